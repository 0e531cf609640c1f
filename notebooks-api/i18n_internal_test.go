package notebooksapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var verbRE = regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z%]`)

// sameVerbs reports whether two formats take the same arguments in the same order.
func sameVerbs(a, b string) bool {
	return slices.Equal(verbRE.FindAllString(a, -1), verbRE.FindAllString(b, -1))
}

// TestCatalogComplete: every page string has its English and its Italian, taking the same
// arguments; every key the templates and the Go code ask for is in the catalog; every
// problem detail the package writes (problem(...)'s format, a Problem's fixed Detail)
// and every login page message has its Italian, with the same arguments.
func TestCatalogComplete(t *testing.T) {
	for key, m := range pageText {
		if strings.TrimSpace(m[0]) == "" || strings.TrimSpace(m[1]) == "" {
			t.Errorf("page string %q lacks a language: %q", key, m)
		}
		if !sameVerbs(m[0], m[1]) {
			t.Errorf("page string %q: English %q and Italian %q take different arguments", key, m[0], m[1])
		}
	}
	for en, it := range problemIT {
		if strings.TrimSpace(it) == "" || !sameVerbs(en, it) {
			t.Errorf("problem detail %q: Italian %q is empty or takes other arguments", en, it)
		}
	}
	// Keys used by the templates: {{T .L "key"}}, {{T $.L "key" ...}}; the computed ones
	// (state., kind., request.) are listed with every value they take.
	used := map[string]string{}
	tpl, _ := filepath.Glob("templates/*.html")
	for _, f := range tpl {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`\{\{[^}]*\bT \$?\.L "([a-z_.]+)"`).FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = f
		}
	}
	for _, k := range []string{"state.active", "state.suspended", "state.not_yet_valid", "state.expired",
		"kind.project", "kind.request", "kind.approve", "kind.reject", "kind.suspend", "kind.resume",
		"request.pending", "request.approved", "request.rejected",
		"done.approve", "done.reject", "done.suspend", "done.resume", "done.grant"} {
		used[k] = "computed"
	}
	if len(used) < 60 {
		t.Fatalf("only %d keys found in the templates: the pattern no longer matches them", len(used))
	}
	// Go code: tr(l, "key", ...), and problem(status, code, "format", ...), &Problem{Detail: "..."},
	// renderLogin(w, r, status, "message").
	fset := token.NewFileSet()
	files, _ := filepath.Glob("*.go")
	var details, logins int
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			lit := func(e ast.Expr) (string, bool) {
				bl, ok := e.(*ast.BasicLit)
				if !ok || bl.Kind != token.STRING {
					return "", false
				}
				s, err := strconv.Unquote(bl.Value)
				return s, err == nil
			}
			switch n := n.(type) {
			case *ast.CallExpr:
				name := ""
				switch fn := n.Fun.(type) {
				case *ast.Ident:
					name = fn.Name
				case *ast.SelectorExpr:
					name = fn.Sel.Name
				}
				switch {
				case name == "tr" && len(n.Args) >= 2:
					if k, ok := lit(n.Args[1]); ok {
						used[k] = fset.Position(n.Pos()).String()
					}
				case name == "problem" && len(n.Args) >= 3:
					// Formats built by concatenation are checked whole.
					if be, ok := n.Args[2].(*ast.BinaryExpr); ok {
						if s, ok := concat(be, lit); ok {
							details++
							if _, ok := problemIT[s]; !ok {
								t.Errorf("%s: problem detail %q has no Italian (problemIT)", fset.Position(n.Pos()), s)
							}
						}
					} else if s, ok := lit(n.Args[2]); ok {
						details++
						if _, ok := problemIT[s]; !ok {
							t.Errorf("%s: problem detail %q has no Italian (problemIT)", fset.Position(n.Pos()), s)
						}
					}
				case (name == "renderLogin" || name == "renderMessage") && len(n.Args) >= 4:
					if s, ok := lit(n.Args[3]); ok && s != "" {
						logins++
						if _, ok := loginIT[s]; !ok {
							t.Errorf("%s: login message %q has no Italian (loginIT)", fset.Position(n.Pos()), s)
						}
					}
				}
			case *ast.KeyValueExpr:
				if id, ok := n.Key.(*ast.Ident); ok && id.Name == "Detail" {
					if s, ok := lit(n.Value); ok {
						details++
						if _, ok := problemIT[s]; !ok {
							t.Errorf("%s: problem detail %q has no Italian (problemIT)", fset.Position(n.Pos()), s)
						}
					}
				}
			}
			return true
		})
	}
	if details < 40 || logins < 5 {
		t.Errorf("found %d problem details and %d login messages: the checks no longer see the code", details, logins)
	}
	for k, where := range used {
		if _, ok := pageText[k]; !ok {
			t.Errorf("%s uses page string %q, which the catalog lacks", where, k)
		}
	}
}

func concat(e ast.Expr, lit func(ast.Expr) (string, bool)) (string, bool) {
	if be, ok := e.(*ast.BinaryExpr); ok && be.Op == token.ADD {
		a, ok1 := concat(be.X, lit)
		b, ok2 := concat(be.Y, lit)
		return a + b, ok1 && ok2
	}
	return lit(e)
}

// TestLangOf: Italian when the browser prefers it to English, English otherwise; ?lang=
// overrides.
func TestLangOf(t *testing.T) {
	for _, tc := range []struct {
		accept, query string
		want          lang
	}{
		{"it-IT,it;q=0.9,en-US;q=0.8,en;q=0.7", "", langIT},
		{"it", "", langIT},
		{"en-US,en;q=0.9,it;q=0.8", "", langEN},
		{"en-GB", "", langEN},
		{"de-DE,de;q=0.9", "", langEN},
		{"", "", langEN},
		{"fr-FR,fr;q=0.9,it;q=0.5", "", langIT}, // no English asked for: Italian is preferred to it
		{"fr-FR,fr;q=0.9,en;q=0.6,it;q=0.5", "", langEN},
		{"not a header", "", langEN},
		{"it-IT", "lang=en", langEN},
		{"en", "lang=it", langIT},
	} {
		r := httptest.NewRequest("GET", "/ledger?"+tc.query, nil)
		if tc.accept != "" {
			r.Header.Set("Accept-Language", tc.accept)
		}
		if got := langOf(r); got != tc.want {
			t.Errorf("Accept-Language %q, query %q: %v, want %v", tc.accept, tc.query, got.Code(), tc.want.Code())
		}
	}
}
