package docs_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/velo-fse/velo/internal/testenv"
)

// trackedFiles lists the repository's tracked files, relative to its root.
func trackedFiles(t *testing.T, root string) []string {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		testenv.Missing(t, "no git on PATH to list the tracked files: apt-get install git")
	}
	cmd := exec.Command(git, "ls-files", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files in %s: %v", root, err)
	}
	files := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(files) < 100 {
		t.Fatalf("git ls-files lists %d files: not the repository", len(files))
	}
	return files
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// The repository stands alone: no tracked file refers to the design notes that lived
// beside it, or to a folder beside the checkout — except the fixtures setting's default
// (internal/testenv) and the README line that documents it.
func TestNoReferenceOutsideRepository(t *testing.T) {
	root := repoRoot(t)
	outside := "../" + "shared"
	forbidden := []string{"DESIGN" + ".md", "DOMAIN" + ".md", "STYLE" + ".md", outside}
	allowed := map[string]string{ // file -> the one line that may name outside
		"internal/testenv/testenv.go": `const DefaultFixtures = "` + outside + `/fixtures"`,
		"README.md":                   "| `" + testenv.FixturesEnv + "` |",
	}
	for _, name := range trackedFiles(t, root) {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(b, 0) >= 0 {
			continue // binary
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, word := range forbidden {
				if !strings.Contains(line, word) {
					continue
				}
				if word == outside && allowed[name] != "" && strings.HasPrefix(strings.TrimSpace(line), allowed[name]) {
					continue
				}
				t.Errorf("%s:%d mentions %s: point at the repository's own docs (docs/design.md, docs/domain.md, ...), and reach the fixtures only through %s", name, i+1, word, testenv.FixturesEnv)
			}
		}
	}
}

var (
	fence    = regexp.MustCompile("(?ms)^\\s*(```|~~~).*?^\\s*(```|~~~)[^\\n]*$")
	codeSpan = regexp.MustCompile("`[^`\\n]*`")
	link     = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	heading  = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t#]*$`)
	mdLink   = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// withoutCode blanks fenced blocks and code spans, where brackets are not links.
func withoutCode(text string) string {
	text = fence.ReplaceAllString(text, "")
	return codeSpan.ReplaceAllString(text, "")
}

// anchors are the fragment ids a renderer gives a Markdown file's headings, as GitHub
// makes them: lower case, letters, digits, spaces, hyphens and underscores kept, spaces
// turned into hyphens, a repeated heading numbered.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(fence.ReplaceAllString(text, ""), -1) {
		h := mdLink.ReplaceAllString(m[1], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

func TestAnchors(t *testing.T) {
	got := anchors("# Velo\n## Bounding each person's contribution\n### `POST /v1/queries`\n" +
		"## Groups: public domains and partition selection\n```\n# not a heading\n```\n## Notes\n## Notes\n## Mapping (default-deny)\n")
	for _, want := range []string{"velo", "bounding-each-persons-contribution", "post-v1queries", "groups-public-domains-and-partition-selection", "notes", "notes-1", "mapping-default-deny"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a comment in a code block is a heading")
	}
}

// Every relative link in the repository's Markdown leads to a file that exists, and to a
// heading in it when it names one.
func TestMarkdownLinks(t *testing.T) {
	root := repoRoot(t)
	checked := 0
	for _, name := range trackedFiles(t, root) {
		if !strings.HasSuffix(name, ".md") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(withoutCode(string(b)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			file := filepath.Join(root, filepath.Dir(name), path)
			if path == "" {
				file = filepath.Join(root, name)
			}
			checked++
			fb, err := os.ReadFile(file)
			if err != nil {
				if fi, serr := os.Stat(file); serr == nil && fi.IsDir() && anchor == "" {
					continue
				}
				t.Errorf("%s: link %s: %v", name, target, err)
				continue
			}
			if anchor != "" && strings.HasSuffix(file, ".md") && !anchors(string(fb))[anchor] {
				t.Errorf("%s: link %s: no heading #%s in %s", name, target, anchor, path)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked %d relative links: the link pattern finds none", checked)
	}
}
