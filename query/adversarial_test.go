package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/release"
)

// The adversarial corpus: queries written as an attacker would try them, each run
// through the real Engine (real ledger, real DuckDB, the package's synthetic dataset),
// each with its exact expected outcome. The format is documented in
// testdata/adversarial/README.md.
func TestAdversarialCorpus(t *testing.T) {
	cases := loadAdversarialCases(t, filepath.Join("testdata", "adversarial"))
	if len(cases) < 200 {
		t.Fatalf("%d adversarial cases, want at least 200", len(cases))
	}
	data := synthDataset(t)
	eng, led := openAdversarialEngine(t, data)
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.knownDefect != "" {
				t.Skipf("KNOWN DEFECT (%s:%d): %s", c.file, c.line, c.knownDefect)
			}
			before, err := led.Project("wl")
			if err != nil {
				t.Fatal(err)
			}
			req := c.req
			req.SQL, req.Project, req.Actor = c.sql, "wl", "user:adversary"
			rel, err := eng.Query(ctx, req)
			after, perr := led.Project("wl")
			if perr != nil {
				t.Fatal(perr)
			}
			where := fmt.Sprintf("%s:%d", c.file, c.line)
			if c.want.refused {
				var qe *Error
				if !errors.As(err, &qe) {
					t.Fatalf("%s: got %s, want refused %s %q", where, outcome(rel, err), c.want.code, c.want.msg)
				}
				if qe.Code != c.want.code || !strings.Contains(qe.Msg, c.want.msg) {
					t.Errorf("%s: refused %s %q, want %s containing %q", where, qe.Code, qe.Msg, c.want.code, c.want.msg)
				}
				if c.want.pos != nil && qe.Pos != *c.want.pos {
					t.Errorf("%s: refused at position %d, want %d", where, qe.Pos, *c.want.pos)
				}
				if leak := internalLeak(qe.Msg, c.sql, data); leak != "" {
					t.Errorf("%s: refusal %q shows engine internals (%s)", where, qe.Msg, leak)
				}
				if after.Spent != before.Spent || after.Queries != before.Queries {
					t.Errorf("%s: a refusal was charged: spent %+v in %d queries, was %+v in %d", where, after.Spent, after.Queries, before.Spent, before.Queries)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: got %s, want answered", where, outcome(nil, err))
			}
			var cols []string
			for _, col := range rel.Columns {
				cols = append(cols, col.Name+":"+col.Kind)
			}
			if !slices.Equal(cols, c.want.columns) {
				t.Errorf("%s: columns %s, want %s", where, strings.Join(cols, "|"), strings.Join(c.want.columns, "|"))
			}
			if rel.Bounding.PartitionSelection != c.want.selection {
				t.Errorf("%s: partition selection %v, want %v", where, rel.Bounding.PartitionSelection, c.want.selection)
			}
			if !c.want.selection && len(rel.Rows) != c.want.rows {
				t.Errorf("%s: %d rows, want %d", where, len(rel.Rows), c.want.rows)
			}
			if len(rel.CI) != len(rel.Rows) {
				t.Errorf("%s: %d rows of intervals for %d rows", where, len(rel.CI), len(rel.Rows))
			}
			for i, row := range rel.Rows {
				if len(row) != len(rel.Columns) {
					t.Fatalf("%s: row %d has %d cells for %d columns", where, i, len(row), len(rel.Columns))
				}
				for j, col := range rel.Columns {
					if f, ok := row[j].(float64); col.Kind == "dp" && (!ok || !finite(f)) {
						t.Fatalf("%s: row %d column %s is %v (%T), want a finite number", where, i, col.Name, row[j], row[j])
					}
					if ci := rel.CI[i][j]; ci != nil && (col.Kind != "dp" || !finiteInterval(ci)) {
						t.Fatalf("%s: row %d column %s has the interval %v", where, i, col.Name, ci)
					}
				}
			}
			if !rel.Cached && (after.Queries != before.Queries+1 || math.Abs(after.Spent.Epsilon-before.Spent.Epsilon-rel.Epsilon) > 1e-9) {
				t.Errorf("%s: charged %v in %d queries, want %v in one", where, after.Spent.Epsilon-before.Spent.Epsilon, after.Queries-before.Queries, rel.Epsilon)
			}
		})
	}
}

// openAdversarialEngine opens the engine the corpus runs against: a project approved for
// every table but lab_result, and for three person columns only (not asl, not province),
// with a budget no case exhausts and a timeout that keeps the corpus quick.
func openAdversarialEngine(t *testing.T, data string) (*Engine, *ledger.Ledger) {
	t.Helper()
	led, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	allow := map[string][]string{"person": {"birth_year", "sex", "region"}}
	for _, tbl := range []string{"booking", "prescription", "document", "diagnosis", "procedure", "medication", "vaccination", "er_visit"} {
		allow[tbl] = nil
	}
	if err := led.CreateProject(context.Background(), "dpo:test", ledger.Project{
		ID: "wl", Purpose: "adversarial corpus", LegalBasis: "test", Allow: allow,
		EpsilonBudget: 1e6, DeltaBudget: 0.5, DefaultEpsilon: 0.5,
	}); err != nil {
		t.Fatal(err)
	}
	eng, err := Open(context.Background(), Config{DataDir: data, Ledger: led, Logger: testLogger(t), Limits: Limits{Timeout: 20 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		eng.Close()
		led.Close()
	})
	return eng, led
}

// finiteInterval reports whether a released interval is [lo, hi] with finite lo <= hi,
// as computed ([]float64) or read back from the release cache ([]any).
func finiteInterval(ci any) bool {
	var b []float64
	switch v := ci.(type) {
	case []float64:
		b = v
	case []any:
		for _, x := range v {
			f, ok := toFloat(x)
			if !ok {
				return false
			}
			b = append(b, f)
		}
	}
	return len(b) == 2 && finite(b[0]) && finite(b[1]) && b[0] <= b[1]
}

func outcome(rel *release.Release, err error) string {
	var qe *Error
	switch {
	case errors.As(err, &qe):
		return fmt.Sprintf("refused %s %q", qe.Code, qe.Msg)
	case err != nil:
		return fmt.Sprintf("error %v", err)
	}
	return fmt.Sprintf("answered (%d rows, selection %v)", len(rel.Rows), rel.Bounding.PartitionSelection)
}

// internalLeak names what a refusal message shows of the engine's insides that the
// query did not say itself: the data directory, the sandbox, the rewrite's relations,
// the total forms it prints, DuckDB's settings, or a Go panic; or DuckDB's internal
// spellings of the user's SQL (internalSpellings).
func internalLeak(msg, sql, data string) string {
	for _, s := range []string{data, "velo-sandbox", "read_parquet(", "per_unit", "bounded", "TRY_CAST", "hash(", ".parquet", "max_expression_depth", "goroutine", "panic"} {
		if strings.Contains(msg, s) && !strings.Contains(sql, s) {
			return s
		}
	}
	for _, re := range internalSpellings {
		if m := re.FindString(msg); m != "" && !re.MatchString(sql) {
			return "DuckDB's internal spelling " + strconv.Quote(strings.TrimSpace(m))
		}
	}
	return ""
}

// internalSpellings are what DuckDB's parser makes of the user's SQL, which a refusal
// must not show in their place (messages.go): GLOB's ~~~, LIKE's ~~, INTERVAL's
// to_days(trunc(...)), an unknown type's UNBOUND, the main schema, AST node and type
// names, join reference types.
var internalSpellings = func() []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, p := range []string{
		`!?~~~?\*?`, `(^|[^a-z_.])main\.`, `\bUNBOUND\b`, `(^|[^a-z_])trunc\b`, `\bto_(years|months|days|weeks|hours|minutes|seconds)\b`,
		`\blist_value\b`, `\bstruct_pack\b`, `\barray_(extract|slice)\b`, `\bgrouping_function\b`, `(?i)\bpositional_reference\b`,
		`\b(i?like|not_i?like)_escape\b`, `\bCOMPARE_[A-Z]`, `\bOPERATOR_[A-Z]`, `\bCONJUNCTION_[A-Z]`, `_MODIFIER\b`, `\bLIMIT_PERCENT\b`,
		`\b(VALUE_CONSTANT|COLUMN_REF|BASE_TABLE|SELECT_NODE|TABLE_FUNCTION|EXPRESSION_LIST)\b`, `(?i)\b(regular|cross|natural|positional|asof) (inner|left|right|full|outer|semi|anti) join\b`,
		`\bT_List\b`, `\bjson_serialize_sql\b`, `(?i)\bcompare_(in|not_in|between)\b`,
	} {
		out = append(out, regexp.MustCompile(p))
	}
	return out
}()

type advCase struct {
	file        string
	line        int
	name        string
	sql         string
	req         Request
	want        advExpect
	knownDefect string
}

type advExpect struct {
	refused   bool
	code, msg string
	pos       *int
	selection bool
	rows      int
	columns   []string // name:kind, in order
}

var (
	refusedRe  = regexp.MustCompile(`^refused (\S+) "((?:[^"\\]|\\.)*)"(?: at=(-?\d+))?$`)
	answeredRe = regexp.MustCompile(`^answered (?:rows=(\d+)|(selection)) columns=(.+)$`)
)

// loadAdversarialCases reads every *.sql file of dir.
func loadAdversarialCases(t *testing.T, dir string) []advCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no case files in %s (%v)", dir, err)
	}
	var cases []advCase
	names := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := parseAdversarial(filepath.Base(f), string(b))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if prev, dup := names[c.name]; dup {
				t.Fatalf("%s:%d: case %q is also in %s", c.file, c.line, c.name, prev)
			}
			names[c.name] = fmt.Sprintf("%s:%d", c.file, c.line)
		}
		cases = append(cases, cs...)
	}
	return cases
}

// parseAdversarial splits a case file into cases: each starts at a "-- name:" line,
// followed by directive lines, then its SQL up to the next case.
func parseAdversarial(file, text string) ([]advCase, error) {
	var cases []advCase
	var cur *advCase
	var sqlLines []string
	inDirectives := false
	finish := func() error {
		if cur == nil {
			return nil
		}
		raw := strings.TrimSpace(strings.Join(sqlLines, "\n"))
		if raw == "" {
			return fmt.Errorf("%s:%d: case %q has no SQL", file, cur.line, cur.name)
		}
		sql, err := expandSQL(raw)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", file, cur.line, err)
		}
		cur.sql = sql
		if !cur.want.refused && cur.want.columns == nil {
			return fmt.Errorf("%s:%d: case %q has no expect line", file, cur.line, cur.name)
		}
		cases = append(cases, *cur)
		return nil
	}
	for i, line := range strings.Split(text, "\n") {
		key, val, isDirective := directive(line)
		switch {
		case isDirective && key == "name":
			if err := finish(); err != nil {
				return nil, err
			}
			cur, sqlLines, inDirectives = &advCase{file: file, line: i + 1, name: val}, nil, true
		case cur == nil:
			// The file's header: free text.
		case isDirective && inDirectives:
			if err := cur.set(key, val); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", file, i+1, err)
			}
		default:
			inDirectives = false
			sqlLines = append(sqlLines, line)
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return cases, nil
}

func directive(line string) (key, val string, ok bool) {
	rest, found := strings.CutPrefix(line, "-- ")
	if !found {
		return "", "", false
	}
	key, val, found = strings.Cut(rest, ":")
	switch key {
	case "name", "expect", "request", "known-defect":
		return key, strings.TrimSpace(val), found
	}
	return "", "", false
}

func (c *advCase) set(key, val string) error {
	switch key {
	case "known-defect":
		c.knownDefect = val
	case "request":
		for _, kv := range strings.Fields(val) {
			k, v, _ := strings.Cut(kv, "=")
			if k == "bounds" { // bounds=name:lo:hi
				parts := strings.Split(v, ":")
				if len(parts) != 3 {
					return fmt.Errorf("request %s: want bounds=name:lo:hi", kv)
				}
				lo, err1 := strconv.ParseFloat(parts[1], 64)
				hi, err2 := strconv.ParseFloat(parts[2], 64)
				if err := errors.Join(err1, err2); err != nil {
					return fmt.Errorf("request %s: %w", kv, err)
				}
				if c.req.Bounds == nil {
					c.req.Bounds = map[string][2]float64{}
				}
				c.req.Bounds[parts[0]] = [2]float64{lo, hi}
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("request %s: %w", kv, err)
			}
			switch k {
			case "epsilon":
				c.req.Epsilon = &f
			case "delta":
				c.req.Delta = &f
			case "max_groups_contributed":
				c.req.MaxGroupsContributed = int(f)
			default:
				return fmt.Errorf("unknown request field %s", k)
			}
		}
	case "expect":
		if m := refusedRe.FindStringSubmatch(val); m != nil {
			msg, err := strconv.Unquote(`"` + m[2] + `"`)
			if err != nil {
				return fmt.Errorf("expect: %w", err)
			}
			c.want = advExpect{refused: true, code: m[1], msg: msg}
			if m[3] != "" {
				p, _ := strconv.Atoi(m[3])
				c.want.pos = &p
			}
			return nil
		}
		m := answeredRe.FindStringSubmatch(val)
		if m == nil {
			return fmt.Errorf("expect %q: want `refused CODE \"substring\" [at=N]` or `answered rows=N|selection columns=name:kind|...`", val)
		}
		c.want = advExpect{selection: m[2] != ""}
		c.want.rows, _ = strconv.Atoi(m[1])
		c.want.columns = strings.Split(m[3], "|")
		for _, col := range c.want.columns {
			if i := strings.LastIndex(col, ":"); i < 0 || col[i+1:] != "key" && col[i+1:] != "dp" {
				return fmt.Errorf("expect: column %q is not name:key or name:dp", col)
			}
		}
	}
	return nil
}

// expandSQL expands the generators of a case's SQL ({{repeat N "text"}}, {{seq N
// "format with %d" "separator"}}), so that huge queries need not be stored.
func expandSQL(raw string) (string, error) {
	if !strings.Contains(raw, "{{") {
		return raw, nil
	}
	tmpl, err := template.New("sql").Funcs(template.FuncMap{
		"repeat": func(n int, s string) string { return strings.Repeat(s, n) },
		"seq": func(n int, format, sep string) string {
			parts := make([]string, n)
			for i := range parts {
				parts[i] = strings.ReplaceAll(format, "%d", strconv.Itoa(i))
			}
			return strings.Join(parts, sep)
		},
	}).Parse(raw)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, nil); err != nil {
		return "", err
	}
	return b.String(), nil
}
