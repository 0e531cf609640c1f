package docsexamples

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Action is what the runner does with a block.
type Action string

const (
	Run       Action = "run"
	Skip      Action = "skip"
	Notebook  Action = "notebook"  // execute Directive.Path headless instead
	Dashboard Action = "dashboard" // open the dashboards provisioned from Directive.Path instead
)

// Demo is the state of the demo a block wants.
type Demo string

const (
	DemoAsIs    Demo = ""
	DemoStopped Demo = "stopped"
	DemoRunning Demo = "running"
)

// Block is one fenced command block of a document.
type Block struct {
	File   string // as given to Parse
	Line   int    // of the opening fence, from 1
	Lang   string // sh, bash, shell or console
	Text   string // the block's lines
	Action Action
	Path   string // of a notebook or a provisioning directory
	Reason string // why it is skipped or replaced
	Demo   Demo   // the demo's state before the block
}

func (b Block) String() string { return fmt.Sprintf("%s:%d", b.File, b.Line) }

// Script is the shell text the block runs: its lines, or for a console block the commands
// after "$ " (with their continuation lines), without the output shown.
func (b Block) Script() string {
	if b.Lang != "console" {
		return b.Text
	}
	var out []string
	cont := false
	for l := range strings.Lines(b.Text) {
		l = strings.TrimRight(l, "\n")
		switch {
		case cont:
			out = append(out, l)
		case strings.HasPrefix(l, "$ "):
			out = append(out, strings.TrimPrefix(l, "$ "))
		default:
			continue
		}
		cont = strings.HasSuffix(l, `\`)
	}
	return strings.Join(out, "\n") + "\n"
}

// Queries counts the queries the block sends: lines (comments aside) that run velo query,
// post to /v1/queries or run velo_client.py (which asks one).
func (b Block) Queries() int {
	n := 0
	for l := range strings.Lines(b.Script()) {
		if i := strings.Index(l, "#"); i >= 0 && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t') {
			l = l[:i] // a shell comment (a # inside a word, as in a URL's fragment, is not one)
		}
		if strings.Contains(l, "velo query ") || strings.Contains(l, "/v1/queries") || strings.Contains(l, "velo_client.py") {
			n++
		}
	}
	return n
}

// runnable are the info strings of command blocks; other fences (yaml, json, plain) are
// shown text.
var runnable = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true}

var (
	fenceRe     = regexp.MustCompile("^ {0,3}(```+|~~~+)[ \t]*([^ \t`]*)")
	directiveRe = regexp.MustCompile(`^\s*<!--\s*docs-examples:\s*(.*?)\s*-->\s*$`)
	reasonRe    = regexp.MustCompile(`^(.*?)\s*\((.+)\)$`)
)

// Parse returns the command blocks of a Markdown document with their directives. It fails
// on an unknown or malformed directive, on one that no command block follows, and on a
// fence that is never closed.
func Parse(file string, src []byte) ([]Block, error) {
	var blocks []Block
	var pending Block // directives seen since the last block
	pendingLine := 0
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if m := directiveRe.FindStringSubmatch(text); m != nil {
			if err := pending.apply(m[1]); err != nil {
				return nil, fmt.Errorf("%s:%d: docs-examples directive %q: %w", file, line, m[1], err)
			}
			pendingLine = line
			continue
		}
		m := fenceRe.FindStringSubmatch(text)
		if m == nil {
			if strings.TrimSpace(text) != "" && pendingLine != 0 {
				return nil, fmt.Errorf("%s:%d: a docs-examples directive must come right before a fenced command block", file, pendingLine)
			}
			continue
		}
		fence, lang := m[1], strings.ToLower(m[2])
		start := line
		var body strings.Builder
		closed := false
		for sc.Scan() {
			line++
			t := sc.Text()
			if closes(t, fence) {
				closed = true
				break
			}
			body.WriteString(t + "\n")
		}
		if !closed {
			return nil, fmt.Errorf("%s:%d: the fence %s is never closed", file, start, fence)
		}
		if !runnable[lang] {
			if pendingLine != 0 {
				return nil, fmt.Errorf("%s:%d: a docs-examples directive must come right before a fenced command block (```sh, ```bash, ```shell or ```console), not ```%s", file, pendingLine, lang)
			}
			continue
		}
		b := pending
		b.File, b.Line, b.Lang, b.Text = file, start, lang, body.String()
		if b.Action == "" {
			b.Action = Run
		}
		blocks = append(blocks, b)
		pending, pendingLine = Block{}, 0
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if pendingLine != 0 {
		return nil, fmt.Errorf("%s:%d: a docs-examples directive must come right before a fenced command block", file, pendingLine)
	}
	return blocks, nil
}

// closes reports whether line closes a block opened with fence: up to three spaces, then at
// least as many of the fence's character, then nothing but blanks.
func closes(line, fence string) bool {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return false
	}
	t = strings.TrimRight(t, " \t")
	return len(t) >= len(fence) && strings.Trim(t, fence[:1]) == ""
}

// apply records one directive on the block to come.
func (b *Block) apply(d string) error {
	rest, reason := d, ""
	if m := reasonRe.FindStringSubmatch(d); m != nil {
		rest, reason = m[1], m[2]
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return fmt.Errorf("empty: want skip, notebook, dashboard or demo")
	}
	setAction := func(a Action, path string) error {
		if b.Action != "" {
			return fmt.Errorf("the block already has the directive %s", b.Action)
		}
		if reason == "" {
			return fmt.Errorf("%s needs a reason in parentheses: %s (why)", a, strings.TrimSpace(string(a)+" "+path))
		}
		b.Action, b.Path, b.Reason = a, path, reason
		return nil
	}
	switch {
	case f[0] == "skip" && len(f) == 1:
		return setAction(Skip, "")
	case (f[0] == "notebook" || f[0] == "dashboard") && len(f) == 2:
		return setAction(Action(f[0]), f[1])
	case f[0] == "demo" && len(f) == 2 && (f[1] == "stopped" || f[1] == "running"):
		if b.Demo != DemoAsIs {
			return fmt.Errorf("the block already wants the demo %s", b.Demo)
		}
		b.Demo = Demo(f[1])
		return nil
	}
	return fmt.Errorf("want skip (REASON), notebook PATH (REASON), dashboard DIR (REASON), demo stopped or demo running")
}
