package testenv_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velo-fse/velo/internal/testenv"
)

// recorder stands in for the test handed to Missing and Fixtures: it records a skip or a
// failure instead of ending the goroutine.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestMissingSkipsLoudlyOrFailsUnderCI(t *testing.T) {
	for _, tc := range []struct {
		ci         string
		wantSkip   bool
		wantFailed bool
	}{
		{ci: "", wantSkip: true},
		{ci: "false", wantSkip: true},
		{ci: "true", wantFailed: true},
		{ci: "1", wantFailed: true},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			testenv.Missing(r, "no %s: apt-get install chromium", "/usr/bin/chromium")
			if tc.wantSkip && r.skipped != "SKIPPED: no /usr/bin/chromium: apt-get install chromium" {
				t.Errorf("skip message %q", r.skipped)
			}
			if !tc.wantSkip && r.skipped != "" {
				t.Errorf("skipped under CI=%s: %q", tc.ci, r.skipped)
			}
			if tc.wantFailed != (r.failed != "") {
				t.Errorf("failed = %q under CI=%s", r.failed, tc.ci)
			}
			if tc.wantFailed && !strings.HasPrefix(r.failed, "no /usr/bin/chromium: apt-get install chromium") {
				t.Errorf("failure message %q does not explain what is missing", r.failed)
			}
		})
	}
}

func TestFixturesFromTheSetting(t *testing.T) {
	t.Setenv("CI", "")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "fse-gateway-examples"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(testenv.FixturesEnv, dir)
	r := &recorder{TB: t}
	if got, want := testenv.Fixtures(r, "fse-gateway-examples"), filepath.Join(dir, "fse-gateway-examples"); got != want || r.skipped != "" || r.failed != "" {
		t.Errorf("Fixtures = %q (skipped %q, failed %q), want %q", got, r.skipped, r.failed, want)
	}

	// A missing subfolder of a set VELO_FIXTURES: a loud skip naming the path and the setting.
	r = &recorder{TB: t}
	testenv.Fixtures(r, "ministero-salute")
	for _, want := range []string{"SKIPPED: no fixtures folder " + filepath.Join(dir, "ministero-salute"), "VELO_FIXTURES=" + dir, "set VELO_FIXTURES to a copy of the fixtures folder"} {
		if !strings.Contains(r.skipped, want) {
			t.Errorf("skip message %q lacks %q", r.skipped, want)
		}
	}
}

// A relative VELO_FIXTURES, and the default, are taken from the repository root, whichever
// package's folder the test runs in.
func TestFixturesRelativeToRepositoryRoot(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Dir(filepath.Dir(wd)); root != want {
		t.Fatalf("RepoRoot = %s from %s, want %s", root, wd, want)
	}
	t.Setenv(testenv.FixturesEnv, "internal/testenv")
	if got, err := testenv.LookupFixtures("."); err != nil || got != filepath.Join(root, "internal", "testenv") {
		t.Errorf("LookupFixtures with a relative setting = %q, %v", got, err)
	}
	t.Setenv(testenv.FixturesEnv, "")
	_, err = testenv.LookupFixtures("no-such-folder")
	want := "no fixtures folder " + filepath.Join(root, "..", "shared", "fixtures", "no-such-folder") + " (not found; VELO_FIXTURES is unset: the default is " + testenv.DefaultFixtures + " from the repository root)"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("LookupFixtures without the setting: %v, want %q...", err, want)
	}
}
