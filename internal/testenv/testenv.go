// Package testenv is what Velo's tests need from outside the repository, and the one rule
// for when it is missing.
//
// A few tests need something a fresh clone does not carry: the public FSE documents
// (the fixtures, found through the VELO_FIXTURES setting), a headless Chromium, Python with
// Jupyter's packages, util-linux's prlimit. Without it a test does not pass quietly:
//
//   - on a developer's machine it skips loudly: its t.Skip message starts with "SKIPPED:"
//     and names what is missing and how to get it, and `make test` lists every such line
//     at the end of its output;
//   - under CI=true it fails with the same explanation, since CI installs every tool and
//     provides the fixtures: a test that CI skipped would be a test nobody runs.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// SkipPrefix starts every loud skip message; `make test` collects the lines that carry it.
const SkipPrefix = "SKIPPED:"

// FixturesEnv is the environment variable naming the fixtures folder: the one setting
// through which a test reads data from outside the repository. A relative value is taken
// from the repository root.
const FixturesEnv = "VELO_FIXTURES"

// DefaultFixtures is the fixtures folder when FixturesEnv is unset, from the repository
// root: a folder `shared/fixtures` beside the checkout.
const DefaultFixtures = "../shared/fixtures"

// CI reports whether the tests run under CI (CI=true, or any value strconv.ParseBool
// reads as true), where a missing fixture or tool is a failure.
func CI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Missing stops the test for want of something outside the repository: a loud skip
// ("SKIPPED: " + the message) on a developer's machine, a failure under CI. The message
// names what is missing and how to get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("%s (CI=true, and CI provides it: a test CI skipped would never run)", msg)
		return
	}
	t.Skip(SkipPrefix + " " + msg)
}

// Fixtures returns the folder sub of the fixtures (for example "fse-gateway-examples"),
// or stops the test through Missing when it is not there.
func Fixtures(t testing.TB, sub string) string {
	t.Helper()
	dir, err := LookupFixtures(sub)
	if err != nil {
		Missing(t, "%v", err)
	}
	return dir
}

// LookupFixtures returns the folder sub of the fixtures, or an error saying where it was
// looked for and how to provide it. For tests that use the fixtures only when present
// (fuzz seeds) and must not skip without them.
func LookupFixtures(sub string) (string, error) {
	root, setting, err := fixturesRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, sub)
	fi, err := os.Stat(dir)
	if err == nil && fi.IsDir() {
		return dir, nil
	}
	if err == nil {
		err = errors.New("not a directory")
	} else if errors.Is(err, os.ErrNotExist) {
		err = errors.New("not found")
	}
	return "", fmt.Errorf("no fixtures folder %s (%v; %s): set %s to a copy of the fixtures folder "+
		"(it holds fse-gateway-examples/, the FSE Gateway's CDA and FHIR examples from the public "+
		"repository ministero-salute/it-fse-support, doc/esempi/) to run this test",
		dir, err, setting, FixturesEnv)
}

// fixturesRoot resolves the fixtures folder and describes where the value came from.
func fixturesRoot() (root, setting string, err error) {
	root, ok := os.LookupEnv(FixturesEnv)
	if ok && root != "" {
		setting = FixturesEnv + "=" + root
	} else {
		root = DefaultFixtures
		setting = FixturesEnv + " is unset: the default is " + DefaultFixtures + " from the repository root"
	}
	if filepath.IsAbs(root) {
		return filepath.Clean(root), setting, nil
	}
	repo, err := RepoRoot()
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", FixturesEnv, err)
	}
	return filepath.Join(repo, root), setting, nil
}

// RepoRoot is the repository root: the nearest folder holding go.mod, from the working
// directory up (go test runs each package's tests in its folder).
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the repository root: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find the repository root: no go.mod in %s or above", wd)
		}
		dir = parent
	}
}

// InstallDir finds a tool installed outside the repository: the folder named by the
// environment variable env, else the last of candidates (glob patterns, tried in order,
// each one's matches in sorted order) holding the file marker. missing is the error's
// advice on how to install it; a folder env names without the marker is an error too.
func InstallDir(env, marker, missing string, candidates ...string) (string, error) {
	ok := func(dir string) bool {
		fi, err := os.Stat(filepath.Join(dir, marker))
		return err == nil && !fi.IsDir()
	}
	if dir := os.Getenv(env); dir != "" {
		if !ok(dir) {
			return "", fmt.Errorf("%s=%s holds no %s (%s)", env, dir, marker, missing)
		}
		return dir, nil
	}
	found := ""
	for _, pattern := range candidates {
		dirs, _ := filepath.Glob(pattern) // sorted
		for _, d := range dirs {
			if ok(d) {
				found = d
			}
		}
	}
	if found == "" {
		return "", fmt.Errorf("%s, or set %s to the folder holding %s", missing, env, marker)
	}
	return found, nil
}

// CacheDir is the user's cache folder ($XDG_CACHE_HOME, else ~/.cache), where the project's
// install scripts put the tools the tests start.
func CacheDir() string {
	if c := os.Getenv("XDG_CACHE_HOME"); c != "" {
		return c
	}
	h, _ := os.UserHomeDir()
	return filepath.Join(h, ".cache")
}
