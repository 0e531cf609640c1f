// Command testsummary runs `go test -json` and prints what a plain `go test` prints — a
// line per package, and the whole output of every failing test — then the tests that
// skipped loudly for want of fixtures or a tool (package internal/testenv: a t.Skip
// message starting with "SKIPPED:"), which a plain `go test` hides without -v.
//
//	go run ./internal/testsummary [-go GO] [-summary FILE] [--] [go test flags] packages
//
// With -summary the list of skips goes to FILE (for `make test` to print at its very end),
// and to stdout too when a test failed. The exit status is go test's.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

func main() {
	goTool := flag.String("go", "go", "the go command")
	summary := flag.String("summary", "", "write the list of loud skips to this file instead of stdout")
	flag.Parse()
	os.Exit(run(*goTool, *summary, flag.Args()))
}

func run(goTool, summaryFile string, args []string) int {
	cmd := exec.Command(goTool, append([]string{"test", "-json"}, args...)...)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		return 2
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		return 2
	}
	r := newRenderer(os.Stdout)
	r.module = modulePath("go.mod")
	readErr := r.read(stdout)
	status := 0
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			return 2
		}
		status = exit.ExitCode()
	}
	if readErr != nil {
		fmt.Fprintln(os.Stderr, "testsummary: read go test's output:", readErr)
		status = max(status, 2)
	}
	if r.failed && status == 0 {
		status = 1
	}
	text := r.summary()
	if summaryFile == "" || status != 0 {
		fmt.Fprint(os.Stdout, text)
	}
	if summaryFile != "" {
		if err := os.WriteFile(summaryFile, []byte(text), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			status = max(status, 2)
		}
	}
	return status
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output, build-fail
}

// skip is one loud skip: the message and the tests that gave it, by package.
type skip struct {
	message  string
	packages []string            // in the order they came
	tests    map[string][]string // package -> tests
}

// renderer turns the event stream back into go test's plain output and gathers the
// loud skips.
type renderer struct {
	w       io.Writer
	module  string              // packages are named from here: "ingest", "cmd/velo"
	pending map[string][]string // package + " " + test -> output lines not yet shown
	skips   []*skip
	failed  bool
}

func newRenderer(w io.Writer) *renderer {
	return &renderer{w: w, pending: map[string][]string{}}
}

// read renders every line of r; a line that is not a JSON event is shown as it is.
func (r *renderer) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			fmt.Fprintf(r.w, "%s\n", line)
			continue
		}
		r.event(ev)
	}
	return sc.Err()
}

func (r *renderer) event(ev event) {
	key := ev.Package + " " + ev.Test
	switch {
	case ev.Action == "build-output":
		fmt.Fprint(r.w, ev.Output)
	case ev.Action == "build-fail":
		r.failed = true
	case ev.Test == "" && ev.Action == "output":
		// Package lines: "ok  pkg 1.2s", "FAIL pkg", "?   pkg [no test files]", a panic
		// outside any test. A plain go test shows no bare PASS.
		if ev.Output == "PASS\n" {
			return
		}
		if strings.HasPrefix(ev.Output, "FAIL") {
			r.flush(ev.Package) // output of tests cut short (a panic, a timeout)
		}
		fmt.Fprint(r.w, ev.Output)
	case ev.Test == "" && ev.Action == "fail":
		r.failed = true
		r.flush(ev.Package)
	case ev.Action == "output":
		if !framing(ev.Output) {
			r.pending[key] = append(r.pending[key], ev.Output)
		}
	case ev.Action == "fail":
		r.failed = true
		for _, line := range r.pending[key] {
			fmt.Fprint(r.w, line)
		}
		delete(r.pending, key)
	case ev.Action == "skip":
		for _, line := range r.pending[key] {
			if _, msg, ok := strings.Cut(line, "SKIPPED:"); ok {
				r.addSkip("SKIPPED:"+strings.TrimRight(msg, "\n"), r.relative(ev.Package), ev.Test)
			}
		}
		delete(r.pending, key)
	case ev.Action == "pass":
		delete(r.pending, key)
	}
}

// relative names a package from the module's root ("cmd/velo"), as `go test ./cmd/velo`
// takes it.
func (r *renderer) relative(pkg string) string {
	if r.module != "" {
		if pkg == r.module {
			return "."
		}
		if rest, ok := strings.CutPrefix(pkg, r.module+"/"); ok {
			return rest
		}
	}
	return pkg
}

// modulePath is the module path go.mod declares, or "" when there is none to read.
func modulePath(gomod string) string {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// framing reports whether a line is one a plain go test does not print.
func framing(line string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// flush shows what the package's unfinished tests printed.
func (r *renderer) flush(pkg string) {
	var keys []string
	for k := range r.pending {
		if strings.HasPrefix(k, pkg+" ") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, line := range r.pending[k] {
			fmt.Fprint(r.w, line)
		}
		delete(r.pending, k)
	}
}

func (r *renderer) addSkip(msg, pkg, test string) {
	var s *skip
	for _, have := range r.skips {
		if have.message == msg {
			s = have
		}
	}
	if s == nil {
		s = &skip{message: msg, tests: map[string][]string{}}
		r.skips = append(r.skips, s)
	}
	if s.tests[pkg] == nil {
		s.packages = append(s.packages, pkg)
	}
	s.tests[pkg] = append(s.tests[pkg], test)
}

// summary lists the loud skips, one paragraph per message with the tests that gave it.
func (r *renderer) summary() string {
	var b strings.Builder
	if len(r.skips) == 0 {
		b.WriteString("\nNo test skipped for want of fixtures or tools.\n")
		return b.String()
	}
	n := 0
	for _, s := range r.skips {
		for _, tests := range s.tests {
			n += len(tests)
		}
	}
	tests := "tests"
	if n == 1 {
		tests = "test"
	}
	fmt.Fprintf(&b, "\n%d %s skipped for want of fixtures or tools (under CI=true they fail):\n", n, tests)
	for _, s := range r.skips {
		fmt.Fprintf(&b, "\n%s\n", s.message)
		for _, pkg := range s.packages {
			fmt.Fprintf(&b, "  %s: %s\n", pkg, strings.Join(s.tests[pkg], ", "))
		}
	}
	return b.String()
}
