package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/events.json is what `go test -json ./...` printed for a small module: package a
// with a passing test that logs, a failing subtest, a loud and a quiet skip; b with two
// loud skips; c that does not build; d whose test panics.
const eventsFile = "testdata/events.json"

func TestRenderShowsWhatPlainGoTestShows(t *testing.T) {
	f, err := os.Open(eventsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out strings.Builder
	r := newRenderer(&out)
	r.module = "example.com/m"
	if err := r.read(f); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"--- FAIL: TestFail/sub", "sub went wrong", "parent log", "FAIL\texample.com/m/a",
		"ok  \texample.com/m/b",
		"c/c_test.go:5:33: undefined: undefined", "FAIL\texample.com/m/c [build failed]",
		"--- FAIL: TestPanic", "panic: assignment to entry in nil map", "FAIL\texample.com/m/d",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// What a plain go test hides: passing tests' logs, skips, framing lines, bare PASS.
	for _, hidden := range []string{"quiet", "short mode", "SKIPPED", "--- SKIP", "=== RUN", "--- PASS", "\nPASS\n"} {
		if strings.Contains(got, hidden) {
			t.Errorf("output shows %q:\n%s", hidden, got)
		}
	}
	if !r.failed {
		t.Error("failures not noticed")
	}
	want := `
3 tests skipped for want of fixtures or tools (under CI=true they fail):

SKIPPED: no /usr/bin/chromium: apt-get install chromium
  a: TestLoud
  b: TestLoud

SKIPPED: no fixtures folder /x: set VELO_FIXTURES
  b: TestLoud2
`
	if s := r.summary(); s != want {
		t.Errorf("summary:\n%s\nwant:\n%s", s, want)
	}
}

func TestModulePath(t *testing.T) {
	if got := modulePath("../../go.mod"); got != "github.com/velo-fse/velo" {
		t.Errorf("modulePath(go.mod) = %q", got)
	}
	r := &renderer{module: "github.com/velo-fse/velo"}
	for pkg, want := range map[string]string{
		"github.com/velo-fse/velo/cmd/velo": "cmd/velo",
		"github.com/velo-fse/velo":          ".",
		"github.com/velo-fse/velox":         "github.com/velo-fse/velox",
	} {
		if got := r.relative(pkg); got != want {
			t.Errorf("relative(%s) = %q, want %q", pkg, got, want)
		}
	}
}

func TestRenderNoSkips(t *testing.T) {
	r := newRenderer(&strings.Builder{})
	if err := r.read(strings.NewReader(`{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}` + "\n" + `{"Action":"pass","Package":"p"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if r.failed || r.summary() != "\nNo test skipped for want of fixtures or tools.\n" {
		t.Errorf("failed %v, summary %q", r.failed, r.summary())
	}
	r.addSkip("SKIPPED: no prlimit", "cmd/velo", "TestServeDiskFull")
	if got := r.summary(); !strings.HasPrefix(got, "\n1 test skipped for want of fixtures or tools") {
		t.Errorf("summary of one skip: %q", got)
	}
}

// run keeps go test's exit status and writes the summary to the file; on failure it also
// prints it. A script stands in for the go command; with no go.mod in the working folder,
// packages keep their import paths.
func TestRunKeepsExitStatusAndWritesSummary(t *testing.T) {
	dir := t.TempDir()
	events, err := filepath.Abs(eventsFile)
	if err != nil {
		t.Fatal(err)
	}
	fakeGo := filepath.Join(dir, "go")
	script := "#!/bin/sh\n[ \"$1 $2 $3\" = 'test -json ./...' ] || { echo \"bad arguments: $*\" >&2; exit 9; }\ncat '" + events + "'\nexit 1\n"
	if err := os.WriteFile(fakeGo, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	summary := filepath.Join(dir, "summary.txt")
	stdout := os.Stdout
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	os.Stdout = devNull
	status := run(fakeGo, summary, []string{"./..."})
	os.Stdout = stdout
	if status != 1 {
		t.Errorf("exit status %d, want go test's 1", status)
	}
	b, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "SKIPPED: no fixtures folder /x: set VELO_FIXTURES\n  example.com/m/b: TestLoud2\n") {
		t.Errorf("summary file:\n%s", b)
	}
}
