package query

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/dp"
	"github.com/velo-fse/velo/ledger"
)

// Property tests over generated queries (gen_test.go) on pairs of neighbouring generated
// datasets, D and D' = D plus one person, checked against the oracle (oracle_test.go).
// For every query, on both datasets, through checkSQL, rewrite, the sandbox's prepare and
// run and releaseKeys (and noiseGroups for every eighth: the library's noise is slow for
// many groups), with no ledger and a fixed rewrite seed:
//
//   - the same status on D and D': both accepted, or the same refusal (code and message),
//     or the same failure: errors must not depend on the data;
//   - no panic;
//   - the pre-noise group totals on D equal the oracle's (D's persons stay within every
//     contribution bound, so nothing is left to the keyed hash);
//   - between D and D' at most L0 groups change, and each noised total of a group by at
//     most the L∞ package dp is given for it (read back from dp's own Released values);
//   - releaseKeys yields no key tuple twice, and with public keys every data group is
//     one of them;
//   - the rewrite reads only the tables and columns the project is approved for (its SQL
//     parsed back with DuckDB's json_serialize_sql).

// genCasesEnv sets the number of generated queries of TestGeneratedQueries, for longer
// runs: VELO_GEN_CASES=200000 go test ./query -run TestGeneratedQueries -timeout 2h.
// Without it: 10000 queries, 500 with -short.
const genCasesEnv = "VELO_GEN_CASES"

// genRewriteSeed is the rewrite's keyed-hash seed in these tests: fixed, so a failure
// reproduces.
const genRewriteSeed = 0x5eed_1234_abcd

func TestGeneratedQueries(t *testing.T) {
	cases := 10000
	if testing.Short() {
		cases = 500
	}
	if s := os.Getenv(genCasesEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number of cases", genCasesEnv, s)
		}
		cases = n
	}
	const pairs = 4 // dataset pairs; each runs cases/pairs queries on one sandbox per dataset
	start := time.Now()
	// On a loaded machine, stop (and say so) rather than let -timeout kill the package's
	// test binary: the cases run are checked all the same.
	deadline, hasDeadline := t.Deadline()
	st := &genStats{refused: map[string]int{}, failedBind: map[string]int{}, bindExamples: map[string]string{},
		funcsUsed: map[*funcRule]bool{}, aggsUsed: map[aggKind]bool{}}
	late := func() bool { return hasDeadline && time.Until(deadline) < 2*time.Minute }
	for pair := 0; pair < pairs && !late(); pair++ {
		n := cases / pairs
		if pair < cases%pairs {
			n++
		}
		h := newGenHarness(t, uint64(pair+1), st)
		for i := 0; i < n && !st.tooMany() && !late(); i++ {
			h.runCase(i)
		}
		h.close()
	}
	if st.cases < cases && late() {
		t.Logf("stopped after %d of %d cases: less than 2 minutes to the test timeout (raise -timeout)", st.cases, cases)
	}
	st.report(t, time.Since(start))
}

// genStats counts what the generated queries did, over all dataset pairs.
type genStats struct {
	mu                 sync.Mutex
	cases, accepted    int
	refused            map[string]int // by code
	failedBind         map[string]int // accepted by the checker, refused by DuckDB's binder (the same on D and D')
	bindExamples       map[string]string
	exact, inexact     int // oracle comparisons made, and skipped (a bound bites in D)
	groupsCompared     int
	nonEmptyReleases   int
	neighbourChanged   int // queries where D' changed some total
	selection, public  int
	ranked             int // accepted queries run with the person_rank bounding
	narrowed           int
	restrictedAccepted int
	// The registries' rows the accepted plans used: every function and aggregate Velo
	// accepts must be exercised (a new one enters the registry, and the generator).
	funcsUsed map[*funcRule]bool
	aggsUsed  map[aggKind]bool
	failures  []string
}

func (s *genStats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fmt.Sprintf(format, args...))
}

func (s *genStats) tooMany() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.failures) >= 30
}

func (s *genStats) report(t *testing.T, took time.Duration) {
	t.Helper()
	var codes []string
	for c, n := range s.refused {
		codes = append(codes, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(codes)
	t.Logf("%d generated queries in %v: %d accepted (%d under a restricted allow-list; %d with public keys, %d with partition selection, %d with a domain narrowed by WHERE), refused: %s; accepted by the checker but not bound by DuckDB: %d %v",
		s.cases, took.Round(time.Millisecond), s.accepted, s.restrictedAccepted, s.public, s.selection, s.narrowed, strings.Join(codes, ", "), sum(s.failedBind), s.failedBind)
	t.Logf("bounding: %d accepted queries with person_rank, the others per_group", s.ranked)
	t.Logf("oracle: %d exact comparisons (%d groups), %d skipped because a contribution bound bites in D; %d non-empty releases; D' changed some total in %d queries",
		s.exact, s.groupsCompared, s.inexact, s.nonEmptyReleases, s.neighbourChanged)
	for f, q := range s.bindExamples {
		t.Logf("not bound by DuckDB (%s), e.g.: %s", f, q)
	}
	for _, f := range s.failures {
		t.Error(f)
	}
	// The properties hold vacuously on nothing: make sure the run exercised them.
	if s.accepted == 0 || s.exact == 0 || s.groupsCompared == 0 || s.nonEmptyReleases == 0 || s.neighbourChanged == 0 {
		t.Errorf("nothing was checked: %d accepted, %d compared with the oracle (%d groups), %d non-empty releases, %d changed by the neighbour",
			s.accepted, s.exact, s.groupsCompared, s.nonEmptyReleases, s.neighbourChanged)
	}
	if s.cases >= 400 {
		switch {
		case s.accepted < s.cases/3:
			t.Errorf("only %d of %d queries were accepted", s.accepted, s.cases)
		case s.exact < s.accepted/3:
			t.Errorf("only %d of %d accepted queries were compared with the oracle", s.exact, s.accepted)
		case s.groupsCompared < s.exact:
			t.Errorf("only %d groups compared over %d queries", s.groupsCompared, s.exact)
		case s.nonEmptyReleases < s.accepted/3, s.neighbourChanged < s.accepted/4:
			t.Errorf("%d non-empty releases and %d queries changed by the neighbour, of %d accepted", s.nonEmptyReleases, s.neighbourChanged, s.accepted)
		case s.selection == 0 || s.public == 0 || s.restrictedAccepted == 0 || s.narrowed == 0:
			t.Errorf("a kind of query was never accepted: selection %d, public %d, restricted %d, narrowed %d", s.selection, s.public, s.restrictedAccepted, s.narrowed)
		}
		if missing := unused(s.funcsUsed, s.aggsUsed); s.cases >= 2000 && len(missing) > 0 {
			t.Errorf("registered but never in an accepted generated query (add them to the generator, gen_test.go): %s", strings.Join(missing, ", "))
		}
	}
}

// markUsed records the registered functions and aggregates plan p, checked from q,
// calls: those in the plan, and those the checker rewrote into others (date_part(...)
// becomes month(...)), named in q.
func markUsed(p *plan, q string, funcs map[*funcRule]bool, aggs map[aggKind]bool) {
	lower := strings.ToLower(q)
	for _, r := range funcRules {
		for _, name := range r.Names {
			if strings.Contains(lower, name+"(") || r.Display != "" && strings.Contains(lower, " "+strings.ToLower(r.Display)+" ") {
				funcs[r] = true
			}
		}
	}
	mark := func(e expr) {
		walk(e, func(x expr) {
			switch x := x.(type) {
			case *callExpr:
				funcs[x.rule()] = true
			case *arithExpr:
				funcs[printed["+"]] = true
			}
		})
	}
	mark(p.Where)
	for _, k := range p.Keys {
		mark(k.Expr)
	}
	for _, a := range p.Aggs {
		aggs[a.Kind] = true
		mark(a.Arg)
	}
}

// unused names the registry rows no accepted plan used.
func unused(funcs map[*funcRule]bool, aggs map[aggKind]bool) []string {
	var out []string
	for _, r := range funcRules {
		if !funcs[r] {
			out = append(out, r.Names[0])
		}
	}
	for _, r := range aggRules {
		if !aggs[r.Kind] {
			out = append(out, string(r.Kind))
		}
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// genHarness runs generated queries on one pair of neighbouring datasets.
type genHarness struct {
	ctx    context.Context
	st     *genStats
	cat    *dataset.Catalog
	parser *sql.DB
	sb     [2]*sandbox // D, D'
	orc    *oracle
	gen    *queryGen
	r      *rand.Rand
	seed   uint64
}

func newGenHarness(t *testing.T, seed uint64, st *genStats) *genHarness {
	t.Helper()
	ctx := context.Background()
	cat, catJSON, err := genCatalog()
	if err != nil {
		t.Fatal(err)
	}
	if seed%2 == 0 {
		// Half the pairs without person ranks: joins then truncate each table by a
		// window, and no query can take the person_rank bounding.
		for i := range cat.Tables {
			cat.Tables[i].PersonRank = false
		}
	}
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	d := genDataset(r, 160)
	dPlus := withNeighbour(r, d)
	h := &genHarness{ctx: ctx, st: st, cat: cat, parser: testParser(t), seed: seed, r: r,
		orc: &oracle{cat: cat, data: d, tree: dp.DefaultTree}, gen: &queryGen{r: r, cat: cat}}
	for i, data := range []*genData{d, dPlus} {
		dir := filepath.Join(t.TempDir(), "data")
		if err := writeDataset(dir, cat, catJSON, data); err != nil {
			t.Fatal(err)
		}
		if h.sb[i], err = openSandbox(ctx, dir, cat, Limits{Threads: 1, MemoryLimit: "256MB"}); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func (h *genHarness) close() {
	for _, sb := range h.sb {
		sb.close()
	}
}

// side is what one dataset gave for a query.
type side struct {
	domains  [][]any
	prepErr  error
	groups   map[string]*groupRow
	runErr   error
	keys     [][]any
	keysErr  error
	noiseErr error
	panicked string // the panic and its stack
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func (s *side) status() string {
	panicked, _, _ := strings.Cut(s.panicked, "\n") // stacks differ between goroutines
	return fmt.Sprintf("prepare: %s; run: %s; keys: %s; noise: %s; panic: %q", errText(s.prepErr), errText(s.runErr), errText(s.keysErr), errText(s.noiseErr), panicked)
}

// execute runs an accepted plan on one sandbox as Engine.run does, without the ledger;
// noise (the library's, slow for many groups) only when asked.
func (h *genHarness) execute(sb *sandbox, p *plan, rw rewritten, per, selection dp.Budget, noise bool) (s side) {
	defer func() {
		if v := recover(); v != nil {
			s.panicked = fmt.Sprintf("%v\n%s", v, debug.Stack())
		}
	}()
	domains := make([]*keyDomain, len(p.Keys))
	for i, k := range p.Keys {
		domains[i] = k.Domain
	}
	b, err := sb.bind(h.ctx, rw, domains)
	if s.prepErr = err; err != nil {
		return s
	}
	defer b.close()
	s.domains = b.domains
	if s.groups, s.runErr = b.run(h.ctx, len(p.Keys)); s.runErr != nil {
		return s
	}
	s.keys, _, s.keysErr = releaseKeys(p, rw, s.domains, s.groups, per, selection, Confidence)
	if noise {
		_, _, s.noiseErr = noiseGroups(p, rw, s.domains, s.groups, per, selection, Confidence, dp.DefaultTree)
	}
	return s
}

// genProject is the project policy of the generated queries' budgets.
var genProject = ledger.ProjectStatus{Project: ledger.Project{DefaultEpsilon: 1, DefaultDelta: 1e-5, MaxEpsilonPerQuery: 10, MaxDeltaPerQuery: 1e-3}}

func (h *genHarness) runCase(i int) {
	q := h.gen.query()
	al := genAllowLists[0]
	if n := h.r.IntN(10); n >= 8 {
		al = genAllowLists[n-7]
	}
	where := fmt.Sprintf("pair %d case %d (allow-list %s):\n\t%s\n", h.seed, i, al.name, q)
	defer func() {
		if v := recover(); v != nil {
			h.st.fail("%spanic: %v\n%s", where, v, debug.Stack())
		}
	}()
	h.st.mu.Lock()
	h.st.cases++
	h.st.mu.Unlock()
	plan, err := checkSQL(h.ctx, h.parser, h.cat, q, al.allow)
	if err == nil {
		err = h.price(plan)
	}
	if err != nil {
		// checkSQL and pricing read the catalog only, never the data: the refusal is the
		// same on D and D' by construction. It must be a public, typed refusal.
		var qe *Error
		switch {
		case !errors.As(err, &qe):
			h.st.fail("%srefused with an untyped error: %v", where, err)
		case qe.Code != CodeRejected && qe.Code != CodeForbidden && qe.Code != CodeOptions:
			h.st.fail("%srefused with code %q", where, qe.Code)
		case qe.Msg == "" || qe.Pos < -1 || qe.Pos > len(q):
			h.st.fail("%srefusal %q at position %d", where, qe.Msg, qe.Pos)
		}
		h.st.mu.Lock()
		if qe != nil {
			h.st.refused[qe.Code]++
		}
		h.st.mu.Unlock()
		return
	}
	total, _ := resolveBudget(plan, Request{}, genProject, MaxEpsilon)
	bp, _ := planBudget(plan, dp.Budget{Epsilon: total.Epsilon, Delta: total.Delta})
	per, selection := bp.Per, bp.Selection
	maxGroups, maxRows := contributionBounds(plan)
	tree := dp.DefaultTree
	// Every bounding that applies is exercised: person_rank, where it applies, on every
	// other query (by position, not data), per_group on the rest.
	bounding := boundingByMethod(boundingPerGroup)
	if br := boundingByMethod(boundingPersonRank); br.Applies(plan) && i%2 == 1 {
		bounding = br
	}
	rw := bounding.Rewrite(plan, genRewriteSeed, maxGroups, maxRows, treeShape{tree.Branching, tree.Height}, dp.SumScale)

	// Every eighth query (by position, not data) is also noised and has all its rewrite
	// statements parsed back; the others only the statement that reads the tables.
	full := i%8 == 0
	// D and D' run concurrently; meanwhile the rewrite's SQL is checked and the oracle runs.
	var sides [2]side
	var wg sync.WaitGroup
	for k := range sides {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sides[k] = h.execute(h.sb[k], plan, rw, per, selection, full)
		}()
	}
	if err := rewriteReads(h.ctx, h.parser, h.cat, plan, rw, al.allow, full); err != nil {
		h.st.fail("%sthe rewrite reads outside the allow-list: %v", where, err)
	}
	orc := h.orc.run(plan, rw)
	wg.Wait()
	d, dPlus := &sides[0], &sides[1]

	if d.status() != dPlus.status() {
		h.st.fail("%sstatus differs between D and D':\n\tD:  %s\n\tD': %s", where, d.status(), dPlus.status())
		return
	}
	if d.panicked != "" {
		h.st.fail("%spanic: %s", where, d.panicked)
		return
	}
	if d.prepErr != nil {
		// The checker accepted what DuckDB cannot bind: refused before any data is read,
		// the same on D and D' (checked above). Counted and reported, not a failure.
		h.st.mu.Lock()
		f := bindFailure(d.prepErr)
		if h.st.failedBind[f]++; h.st.failedBind[f] == 1 {
			h.st.bindExamples[f] = q
		}
		h.st.mu.Unlock()
		return
	}
	if d.runErr != nil || d.keysErr != nil || d.noiseErr != nil {
		h.st.fail("%sfailed on both datasets: %s", where, d.status())
		return
	}
	if fmt.Sprint(d.domains) != fmt.Sprint(dPlus.domains) {
		h.st.fail("%sresolved domains differ: %v and %v", where, d.domains, dPlus.domains)
	}
	h.st.mu.Lock()
	h.st.accepted++
	markUsed(plan, q, h.st.funcsUsed, h.st.aggsUsed)
	if al.name != "all" {
		h.st.restrictedAccepted++
	}
	if plan.Selection() {
		h.st.selection++
	} else if len(plan.Keys) > 0 {
		h.st.public++
	}
	if rw.Method == boundingPersonRank {
		h.st.ranked++
	}
	if slices.ContainsFunc(plan.Keys, func(k key) bool { return k.Domain != nil && strings.HasSuffix(k.Domain.Source, "restricted by WHERE") }) {
		h.st.narrowed++
	}
	if len(d.keys) > 0 {
		h.st.nonEmptyReleases++
	}
	h.st.mu.Unlock()

	if orc.narrowing != "" {
		h.st.fail("%sWHERE narrowed a public domain unsoundly: %s", where, orc.narrowing)
	}
	if orc.exact {
		h.compareOracle(where, plan, orc, d.groups)
	} else {
		h.st.mu.Lock()
		h.st.inexact++
		h.st.mu.Unlock()
	}
	for k, s := range sides {
		h.checkKeys(where+[]string{"D", "D'"}[k]+": ", plan, s)
	}
	h.checkNeighbours(where, plan, rw, per, tree, d.groups, dPlus.groups)
}

// price resolves the query's budget as Engine.Query does, under genProject's policy.
func (h *genHarness) price(p *plan) error {
	total, err := resolveBudget(p, Request{}, genProject, MaxEpsilon)
	if err != nil {
		return err
	}
	if _, _, err := dp.Split(dp.Budget{Epsilon: total.Epsilon, Delta: total.Delta}, p.Mechanisms(), p.Selection()); err != nil {
		return &Error{Code: CodeOptions, Msg: err.Error(), Pos: -1}
	}
	return nil
}

var bindFunction = regexp.MustCompile(`argument types '([a-z_+]+)\(`)

func bindFailure(err error) string {
	if m := bindFunction.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return errorClass(err)
}

// compareOracle checks the sandbox's totals on D against the oracle's.
func (h *genHarness) compareOracle(where string, p *plan, orc *oracleResult, groups map[string]*groupRow) {
	scaled := map[int]bool{} // value columns that hold rounded scaled sums
	col := 0
	for _, a := range p.Aggs {
		switch a.Kind {
		case aggSum, aggAvg:
			scaled[col+1] = true
			col += 2
		case aggVarPop, aggVarSamp, aggStdPop, aggStdSamp:
			scaled[col+1], scaled[col+2] = true, true
			col += 3
		default:
			col++
		}
	}
	ids := func(m map[string]*groupRow) []string {
		out := make([]string, 0, len(m))
		for id := range m {
			out = append(out, id)
		}
		sort.Strings(out)
		return out
	}
	if got, want := ids(groups), ids(orc.groups); !slices.Equal(got, want) {
		h.st.fail("%sgroups on D: sandbox %q, oracle %q", where, got, want)
		return
	}
	for id, want := range orc.groups {
		got := groups[id]
		if got.persons != want.persons {
			h.st.fail("%sgroup %q: %d persons, oracle %d", where, id, got.persons, want.persons)
		}
		for c := range want.vals {
			diff := got.vals[c] - want.vals[c]
			if diff != 0 && !(scaled[c] && abs64(diff) <= orc.slack[id]) {
				h.st.fail("%sgroup %q value column %d: sandbox %d, oracle %d (slack %d)", where, id, c, got.vals[c], want.vals[c], orc.slack[id])
			}
		}
		owner := p.treeOwners()
		for j := range p.Aggs {
			// A quantile reads its owner's tree: the oracle counts each quantile's own,
			// which must be that one.
			if !treesEqual(got.tree[owner[j]], want.tree[j]) {
				h.st.fail("%sgroup %q quantile %d tree (read off quantile %d's): sandbox %v, oracle %v", where, id, j, owner[j], got.tree[owner[j]], want.tree[j])
			}
		}
	}
	h.st.mu.Lock()
	h.st.exact++
	h.st.groupsCompared += len(groups)
	h.st.mu.Unlock()
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func treesEqual(a, b treeCounts) bool {
	for k, v := range a {
		if v != b[k] {
			return false
		}
	}
	for k, v := range b {
		if v != a[k] {
			return false
		}
	}
	return true
}

// checkKeys checks releaseKeys on one dataset: no key tuple twice; with public keys the
// cross product of the resolved domains, holding every data group; with partition
// selection, data groups only.
func (h *genHarness) checkKeys(where string, p *plan, s side) {
	seen := map[string]bool{}
	for _, k := range s.keys {
		id := groupID(k)
		if seen[id] {
			h.st.fail("%skey tuple %v released twice", where, k)
		}
		seen[id] = true
	}
	if p.Selection() {
		for _, k := range s.keys {
			if s.groups[groupID(k)] == nil {
				h.st.fail("%spartition selection released %v, which is not a data group", where, k)
			}
		}
		return
	}
	n := 1
	for _, d := range s.domains {
		n *= len(d)
	}
	if len(s.keys) != n {
		h.st.fail("%s%d key tuples released, the domains' product has %d", where, len(s.keys), n)
	}
	for id, g := range s.groups {
		if !seen[id] {
			h.st.fail("%sdata group %v is outside the released public domains %v", where, g.keys, s.domains)
		}
	}
}

// sensCheck bounds how much one person may change a linear combination of a group's value
// columns: |Σ coef[c]·Δvals[c]| ≤ lInf.
type sensCheck struct {
	what string
	coef map[int]int64
	lInf float64
}

// declaredSensitivities asks package dp, with the arguments noiseGroups gives it, which
// L0 and L∞ it noises each of a plan's totals with: the bounds the neighbour property
// checks are the ones the release relies on, not a copy of their formulas.
func declaredSensitivities(p *plan, rw rewritten, per dp.Budget, tree dp.Tree) (l0 float64, checks []sensCheck, trees map[int]dp.Released, err error) {
	bnd := dp.Bounding{MaxGroups: int64(rw.MaxGroups), MaxContributionsPerGroup: int64(rw.MaxRows)}
	count, err := dp.Count(0, bnd, per, Confidence)
	if err != nil {
		return 0, nil, nil, err
	}
	l0 = count.L0
	rows := func(c int, name string) sensCheck {
		return sensCheck{name + " rows (dp.Count)", map[int]int64{c: 1}, count.LInf}
	}
	trees = map[int]dp.Released{}
	col := 0
	for j, a := range p.Aggs {
		name := fmt.Sprintf("aggregate %d (%s)", j, a.Kind)
		switch a.Kind {
		case aggCountStar, aggCount:
			checks = append(checks, rows(col, name))
			col++
		case aggPersons:
			r, err := dp.CountPersons(0, int64(rw.PersonGroups), per, Confidence)
			if err != nil {
				return 0, nil, nil, err
			}
			checks = append(checks, sensCheck{name + " persons (dp.CountPersons)", map[int]int64{col: 1}, r.LInf})
			col++
		case aggSum:
			r, err := dp.Sum(0, rw.Scales[j], a.Lo, a.Hi, bnd, per, Confidence)
			if err != nil {
				return 0, nil, nil, err
			}
			checks = append(checks, rows(col, name), sensCheck{name + " scaled sum (dp.Sum)", map[int]int64{col + 1: 1}, r.LInf})
			col += 2
		case aggAvg:
			r, err := dp.Mean(0, 0, rw.Scales[j], a.Lo, a.Hi, bnd, per, per, Confidence)
			if err != nil {
				return 0, nil, nil, err
			}
			// dp.Mean noises T = 2·S − (a+b)·N with a, b = ⌊lo·scale⌋, ⌈hi·scale⌉.
			lo, hi := math.Floor(a.Lo*rw.Scales[j]), math.Ceil(a.Hi*rw.Scales[j])
			for _, part := range r.Parts {
				switch part.Of {
				case "centred_sum":
					checks = append(checks, sensCheck{name + " centred sum (dp.Mean)", map[int]int64{col + 1: 2, col: -int64(lo + hi)}, part.LInf})
				case "count":
					checks = append(checks, sensCheck{name + " count (dp.Mean)", map[int]int64{col: 1}, part.LInf})
				}
			}
			col += 2
		case aggVarPop, aggVarSamp, aggStdPop, aggStdSamp:
			lo, hi, _ := a.noisedBounds()
			r, err := dp.Variance(0, 0, 0, rw.Scales[j], lo, hi, bnd, [3]dp.Budget{per, per, per}, a.Kind == aggVarSamp || a.Kind == aggStdSamp, Confidence)
			if err != nil {
				return 0, nil, nil, err
			}
			for k, part := range r.Parts {
				checks = append(checks, sensCheck{name + " " + part.Of + " (dp.Variance)", map[int]int64{col + k: 1}, part.LInf})
			}
			col += 3
		case aggQuantile:
			_, r, err := dp.Quantiles([]float64{a.Q}, func(int, int64) int64 { return 0 }, tree, a.Lo, a.Hi, bnd, per)
			if err != nil {
				return 0, nil, nil, err
			}
			trees[j] = r
			checks = append(checks, rows(col, name))
			col++
		}
	}
	return l0, checks, trees, nil
}

// checkNeighbours checks how much D' = D plus one person changes the exact totals.
func (h *genHarness) checkNeighbours(where string, p *plan, rw rewritten, per dp.Budget, tree dp.Tree, g0, g1 map[string]*groupRow) {
	l0, checks, trees, err := declaredSensitivities(p, rw, per, tree)
	if err != nil {
		// The same arguments made noiseGroups succeed on both datasets.
		h.st.fail("%sdp refuses the release's own arguments: %v", where, err)
		return
	}
	empty := &groupRow{vals: make([]int64, valueColumns(p)), tree: map[int]treeCounts{}}
	changed, counted := 0, 0                 // groups whose totals changed; whose persons did
	norms := make([][2]float64, len(checks)) // per check: Σ|Δ| and ΣΔ² over every group
	l1 := map[int]float64{}                  // per quantile: Σ|Δ| over every node of every group
	l2 := map[int]float64{}
	ids := map[string]bool{}
	for id := range g0 {
		ids[id] = true
	}
	for id := range g1 {
		ids[id] = true
	}
	for id := range ids {
		before, after := g0[id], g1[id]
		if before == nil {
			before = empty
		}
		if after == nil {
			after = empty
		}
		diff := false
		// Persons feed partition selection (dp.KeepPartition): one person adds at most 1.
		if d := after.persons - before.persons; d < 0 || d > 1 {
			h.st.fail("%sgroup %q: persons changed by %d", where, id, d)
		}
		if after.persons != before.persons {
			diff = true
			counted++
		}
		for c := range after.vals {
			diff = diff || after.vals[c] != before.vals[c]
		}
		for ci, c := range checks {
			var d int64
			for col, k := range c.coef {
				d += k * (after.vals[col] - before.vals[col])
			}
			norms[ci][0] += math.Abs(float64(d))
			norms[ci][1] += float64(d) * float64(d)
			if math.Abs(float64(d)) > c.lInf {
				h.st.fail("%sgroup %q: %s changed by %d, L∞ %v", where, id, c.what, d, c.lInf)
			}
		}
		for j, r := range trees {
			perLevel := map[int64]float64{}
			for _, node := range nodeKeys(before.tree[j], after.tree[j]) {
				d := math.Abs(float64(after.tree[j][node] - before.tree[j][node]))
				if d == 0 {
					continue
				}
				diff = true
				if d > r.LInf {
					h.st.fail("%sgroup %q quantile %d node %v changed by %v, L∞ %v", where, id, j, node, d, r.LInf)
				}
				perLevel[node[0]] += d
				l1[j] += d
				l2[j] += d * d
			}
			// dp.Quantiles: each of a person's at most C values adds 1 to one node per level.
			for level, d := range perLevel {
				if d > r.LInf {
					h.st.fail("%sgroup %q quantile %d level %d changed by %v in all, more than C = %v", where, id, j, level, d, r.LInf)
				}
			}
		}
		if diff {
			changed++
		}
	}
	// per_group bounds the groups a person reaches (L0); person_rank bounds their rows in
	// all (package dp is told L0 = 1 and L∞ = the rows kept), so only the norms below hold.
	if rw.Method == boundingPerGroup && float64(changed) > l0 {
		h.st.fail("%sthe added person changed %d groups, L0 %v", where, changed, l0)
	}
	// Partition selection's L0 (dp.KeepPartition) and COUNT(DISTINCT pid)'s: the groups
	// in which the person is counted among the persons.
	if counted > rw.PersonGroups {
		h.st.fail("%sthe added person was counted in %d groups' persons, more than %d", where, counted, rw.PersonGroups)
	}
	// Over all groups, every total the noise covers changed by at most L0·L∞ in L1 norm
	// (Laplace) and √L0·L∞ in L2 norm (Gaussian).
	for c, n := range norms {
		// (The L2 norm's square root may round one ulp past a bound it meets exactly.)
		if n[0] > l0*checks[c].lInf || math.Sqrt(n[1]) > math.Sqrt(l0)*checks[c].lInf*(1+1e-12) {
			h.st.fail("%s%s changed by L1 %v and L2 %v over all groups; L0 %v, L∞ %v", where, checks[c].what, n[0], math.Sqrt(n[1]), l0, checks[c].lInf)
		}
	}
	for j, r := range trees {
		if l1[j] > r.L0*r.LInf || math.Sqrt(l2[j]) > r.LInf*math.Sqrt(r.L0) {
			h.st.fail("%squantile %d tree changed by L1 %v and L2 %v; dp.Quantiles' L0 %v, L∞ %v", where, j, l1[j], math.Sqrt(l2[j]), r.L0, r.LInf)
		}
	}
	if changed > 0 {
		h.st.mu.Lock()
		h.st.neighbourChanged++
		h.st.mu.Unlock()
	}
}

func nodeKeys(a, b treeCounts) [][2]int64 {
	var out [][2]int64
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// derivedColumn names the columns the rewrite's own CTEs and the bounded table define.
// lambdaParam marks a lambda's parameter in rewriteReads' scope (no table has this name).
const lambdaParam = "\x00lambda"

var derivedColumn = regexp.MustCompile(`^(pid|n|m|persons|totals|level|node|v|[kvcsqla][0-9]+)$`)

// rewriteReads parses the rewrite's statements (all, or the one that reads the
// tables: the others read its result only) with DuckDB's parser and checks
// every table and column they reference: the plan's tables and the rewrite's own CTEs
// only, and of a table's columns pid and those the allow-list approves (every
// non-identifier column when it lists none). A reference to a whole row reads every
// column.
func rewriteReads(ctx context.Context, parser *sql.DB, cat *dataset.Catalog, p *plan, rw rewritten, allow map[string][]string, all bool) error {
	stmts := []string{rw.Bounded}
	if all {
		stmts = append(stmts, rw.Groups)
		if rw.Single != "" {
			stmts = append(stmts, rw.Single)
		}
		for _, q := range rw.Tree {
			if q != "" {
				stmts = append(stmts, q)
			}
		}
	}
	var js string
	if err := parser.QueryRowContext(ctx, "SELECT CAST(json_serialize_sql(CAST(? AS VARCHAR)) AS VARCHAR)", strings.Join(stmts, ";\n")).Scan(&js); err != nil {
		return err
	}
	var ast struct {
		Error        bool              `json:"error"`
		ErrorMessage string            `json:"error_message"`
		Statements   []json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal([]byte(js), &ast); err != nil {
		return err
	}
	if ast.Error || len(ast.Statements) != len(stmts) {
		return fmt.Errorf("the rewrite does not parse: %s", ast.ErrorMessage)
	}
	approved := func(table, col string) bool {
		// pid, and the person rank of a table whose files carry one: what the engine
		// bounds by, never released.
		if col == "pid" || (col == dataset.PersonRankColumn && tableMeta(cat, table).PersonRank) {
			return true
		}
		for _, c := range tableMeta(cat, table).Columns {
			if c.Name == col {
				cols := allow[table]
				return !c.Identifier && (len(cols) == 0 || slices.Contains(cols, col))
			}
		}
		return false
	}
	// Names a statement may read besides the plan's tables: its CTEs and the bounded table.
	local := map[string]bool{"base": true, "per_unit": true, "per_person": true, "bounded": true, "vals": true}
	var problems []string
	for i, raw := range ast.Statements {
		var tree any
		if err := json.Unmarshal(raw, &tree); err != nil {
			return err
		}
		var visit func(v any, scope map[string]string)
		visit = func(v any, scope map[string]string) {
			switch v := v.(type) {
			case []any:
				for _, x := range v {
					visit(x, scope)
				}
				return
			case map[string]any:
				if v["type"] == "SELECT_NODE" {
					// Its FROM clause's range variables, by the table they read.
					scope = maps.Clone(scope)
					fromAliases(v["from_table"], scope, local)
				}
				if v["class"] == "LAMBDA" {
					// A lambda's parameters (lambda j: …) name the list's elements in its
					// body, not a table's columns: its body is read with them in scope.
					body := maps.Clone(scope)
					var params func(any)
					params = func(x any) {
						switch x := x.(type) {
						case []any:
							for _, y := range x {
								params(y)
							}
						case map[string]any:
							if x["class"] == "COLUMN_REF" {
								if names, _ := x["column_names"].([]any); len(names) == 1 {
									body[names[0].(string)] = lambdaParam
								}
								return
							}
							for _, y := range x {
								params(y)
							}
						}
					}
					params(v["lhs"])
					visit(v["expr"], body)
					return
				}
				switch {
				case v["type"] == "BASE_TABLE":
					name, _ := v["table_name"].(string)
					if _, ok := allow[name]; !local[name] && (!ok || !slices.ContainsFunc(p.Tables, func(t tableUse) bool { return t.Name == name })) {
						problems = append(problems, fmt.Sprintf("statement %d reads table %q", i, name))
					}
				case v["type"] == "TABLE_FUNCTION":
					problems = append(problems, fmt.Sprintf("statement %d calls a table function", i))
				case v["class"] == "COLUMN_REF":
					var names []string
					for _, n := range v["column_names"].([]any) {
						names = append(names, n.(string))
					}
					table, inScope := scope[names[0]]
					switch {
					case inScope && table == lambdaParam && len(names) <= 2:
						// A lambda's parameter, or a field of it.
					case len(names) == 2 && local[table]:
					case len(names) == 2 && !inScope:
						problems = append(problems, fmt.Sprintf("statement %d reads %s of an unknown table", i, strings.Join(names, ".")))
					case len(names) == 2 && !approved(table, names[1]):
						problems = append(problems, fmt.Sprintf("statement %d reads %s.%s, not approved", i, table, names[1]))
					case len(names) == 1 && inScope && !local[table]:
						// A whole row: every column of the table.
						for _, c := range tableMeta(cat, table).Columns {
							if !approved(table, c.Name) {
								problems = append(problems, fmt.Sprintf("statement %d reads the whole row %s of %s, with %s, not approved", i, names[0], table, c.Name))
								break
							}
						}
					case len(names) == 1 && !derivedColumn.MatchString(names[0]):
						problems = append(problems, fmt.Sprintf("statement %d reads column %q", i, names[0]))
					case len(names) > 2:
						problems = append(problems, fmt.Sprintf("statement %d reads %s", i, strings.Join(names, ".")))
					}
				}
				for _, x := range v {
					visit(x, scope)
				}
			}
		}
		visit(tree, map[string]string{})
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return errors.New(strings.Join(slices.Compact(problems), "; "))
	}
	return nil
}

func tableMeta(cat *dataset.Catalog, name string) *dataset.CatalogTable {
	for i := range cat.Tables {
		if cat.Tables[i].Name == name {
			return &cat.Tables[i]
		}
	}
	return &dataset.CatalogTable{Name: name}
}

// fromAliases adds a FROM clause's range variables to scope, each naming the table it
// reads: a base table under its alias or name, a subquery over one base table (the
// rewrite's per-table truncation) under the subquery's alias.
func fromAliases(ref any, scope map[string]string, local map[string]bool) {
	m, ok := ref.(map[string]any)
	if !ok {
		return
	}
	alias, _ := m["alias"].(string)
	switch m["type"] {
	case "BASE_TABLE":
		name, _ := m["table_name"].(string)
		if alias == "" {
			alias = name
		}
		scope[alias] = name
	case "JOIN":
		fromAliases(m["left"], scope, local)
		fromAliases(m["right"], scope, local)
	case "SUBQUERY":
		inner := map[string]string{}
		if sub, ok := m["subquery"].(map[string]any); ok {
			if node, ok := sub["node"].(map[string]any); ok {
				fromAliases(node["from_table"], inner, local)
			}
		}
		if len(inner) == 1 && alias != "" {
			for _, table := range inner {
				scope[alias] = table
			}
		}
	}
}

// Engine bugs the generated queries found, each with a small query that shows it.

// runGenData stores data as a dataset with genCatalog, and checks, rewrites and runs q on
// it (contribution bounds as the engine picks them, a fixed seed).
func runGenData(t *testing.T, data *genData, q string, allow map[string][]string) (*plan, rewritten, map[string]*groupRow) {
	t.Helper()
	ctx := context.Background()
	cat, catJSON, err := genCatalog()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := writeDataset(dir, cat, catJSON, data); err != nil {
		t.Fatal(err)
	}
	sb, err := openSandbox(ctx, dir, cat, Limits{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.close()
	plan, err := checkSQL(ctx, testParser(t), cat, q, allow)
	if err != nil {
		t.Fatal(err)
	}
	g, r := contributionBounds(plan)
	rw := rewrite(plan, genRewriteSeed, g, r, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
	domains := make([]*keyDomain, len(plan.Keys))
	for i, k := range plan.Keys {
		domains[i] = k.Domain
	}
	b, err := sb.bind(ctx, rw, domains)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer b.close()
	groups, err := b.run(ctx, len(plan.Keys))
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return plan, rw, groups
}

// A NULL value adds nothing to a sum: DuckDB's greatest(NULL, lo) is lo, so the clamped
// sums counted lo for every NULL (which c leaves out) and biased SUM and AVG whose lower
// bound is not 0, and every VAR and STDDEV (whose values are centred, so lo − mid ≠ 0).
func TestClampedSumsSkipNulls(t *testing.T) {
	booking := func(person int, wait any) genRow {
		return genRow{person, map[string]any{"wait_days": wait, "d_contact": day("2024-03-05")}}
	}
	data := &genData{persons: 3, tables: map[string][]genRow{
		"booking": {booking(0, int64(10)), booking(0, nil), booking(1, nil), booking(2, int64(20))},
	}}
	_, rw, groups := runGenData(t, data, "SELECT SUM(-wait_days) AS s, VAR_POP(wait_days) AS v FROM booking", genAllowLists[0].allow)
	g := groups[groupID([]any{})]
	if g == nil {
		t.Fatalf("no group: %v", groups)
	}
	// SUM(-wait_days): values in [-365, 0], the non-NULL ones -10 and -20.
	if want := int64(-30 * rw.Scales[0]); g.vals[1] != want {
		t.Errorf("scaled sum %d, want %d (NULLs must add nothing)", g.vals[1], want)
	}
	// VAR_POP(wait_days): values centred on 182.5, the non-NULL ones -172.5 and -162.5.
	sc := rw.Scales[1]
	wantCount, wantSum, wantSq := int64(2), int64(math.Round(-335*sc)), int64(math.Round((172.5*172.5+162.5*162.5)*sc*sc))
	if got := g.vals[2:5]; got[0] != wantCount || got[1] != wantSum || got[2] != wantSq {
		t.Errorf("variance totals %v, want [%d %d %d]", got, wantCount, wantSum, wantSq)
	}
}

// The per-table truncation before a join reads no column the project is not approved
// for: it hashed the whole row (every column, identifiers too).
func TestTruncationReadsApprovedColumnsOnly(t *testing.T) {
	ctx := context.Background()
	cat, _, err := genCatalog()
	if err != nil {
		t.Fatal(err)
	}
	parser := testParser(t)
	allow := map[string][]string{"booking": {"region"}, "person": {"sex"}}
	for _, q := range []string{
		"SELECT p.sex, COUNT(*) AS n FROM booking b JOIN person p USING (pid) GROUP BY p.sex",
		"SELECT COUNT(DISTINCT b.pid) AS n FROM booking b JOIN person p ON b.pid = p.pid WHERE b.region = '010'",
	} {
		plan, err := checkSQL(ctx, parser, cat, q, allow)
		if err != nil {
			t.Fatal(err)
		}
		rw := rewrite(plan, genRewriteSeed, 4, 4, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
		if err := rewriteReads(ctx, parser, cat, plan, rw, allow, true); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
}

// rewriteReads takes a lambda's parameters (maskL0's list functions) for the list's
// elements in its body only: the mask rewrite passes with the allow-list of its key, and a
// column read inside a lambda, or a parameter's name read outside it, is still caught.
func TestRewriteReadsLambdas(t *testing.T) {
	ctx := context.Background()
	cat, _, err := genCatalog()
	if err != nil {
		t.Fatal(err)
	}
	parser := testParser(t)
	allow := map[string][]string{"booking": {"region"}}
	plan, err := checkSQL(ctx, parser, cat, "SELECT region, COUNT(DISTINCT pid) AS p FROM booking GROUP BY region", allow)
	if err != nil {
		t.Fatal(err)
	}
	rw := rewrite(plan, genRewriteSeed, 4, 4, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
	if !strings.Contains(rw.Bounded, "lambda") {
		t.Fatalf("the rewrite has no lambda: %s", rw.Bounded)
	}
	if err := rewriteReads(ctx, parser, cat, plan, rw, allow, true); err != nil {
		t.Errorf("mask rewrite: %v", err)
	}
	for stmt, want := range map[string]string{
		`SELECT list_transform([1], lambda j: "booking".asl) FROM "booking"`:           "booking.asl, not approved",
		`SELECT list_transform([1], lambda j: asl) FROM "booking"`:                     `reads column "asl"`,
		`SELECT list_transform([1], lambda asl: asl + 1), asl FROM "booking"`:          `reads column "asl"`,
		`SELECT list_transform([{'h': 1}], lambda x: x.h), x.asl FROM "booking"`:       "x.asl of an unknown table",
		`SELECT list_transform([1], lambda j: j + 1), "booking".region FROM "booking"`: "",
	} {
		err := rewriteReads(ctx, parser, cat, plan, rewritten{Bounded: stmt}, allow, false)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", stmt, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want %q", stmt, err, want)
		}
	}
}

// Allow-listed functions whose SQL syntax makes DuckDB's parser name them main.f
// (SUBSTRING, TRIM, EXTRACT) are not refused as qualified names; left and right take two
// arguments (DuckDB has no other).
func TestFunctionsTheParserQualifies(t *testing.T) {
	ctx := context.Background()
	cat := testCatalog(t)
	parser := testParser(t)
	for _, q := range []string{
		"SELECT COUNT(*) AS n FROM booking WHERE substring(provider_id, 1, 3) = '120'",
		"SELECT COUNT(*) AS n FROM booking WHERE substring(provider_id FROM 2) = '20901'",
		"SELECT COUNT(*) AS n FROM booking WHERE trim(provider_id) = '120901'",
		"SELECT extract(month FROM d_contact) AS m, COUNT(*) AS n FROM booking GROUP BY m",
	} {
		if _, err := checkSQL(ctx, parser, cat, q, allowAll(cat)); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	for _, q := range []string{
		"SELECT COUNT(*) AS n FROM booking WHERE left(provider_id, 1, 2) = '1'",
		"SELECT COUNT(*) AS n FROM booking WHERE main.getenv('HOME') = '1'",
		"SELECT COUNT(*) AS n FROM booking WHERE other.lower(provider_id) = '1'",
	} {
		if _, err := checkSQL(ctx, parser, cat, q, allowAll(cat)); err == nil {
			t.Errorf("%s: accepted", q)
		}
	}
}

// round(x, digits) binds: its digits stay an INTEGER (there is no round(DOUBLE, DOUBLE)).
func TestRoundWithDigitsBinds(t *testing.T) {
	data := &genData{persons: 1, tables: map[string][]genRow{
		"booking": {{0, map[string]any{"wait_days": int64(10), "cost": 12.345}}},
	}}
	_, _, groups := runGenData(t, data, "SELECT COUNT(*) AS n, SUM(round(cost, 1)) AS s FROM booking WHERE round(wait_days / 7.0, 2) > 1", genAllowLists[0].allow)
	if g := groups[groupID([]any{})]; g == nil || g.vals[0] != 1 {
		t.Errorf("groups %v, want one row counted", groups)
	}
}

// TestIntegerDivisionIsDuckDBs: a // b, which Velo computes in DOUBLE, gives what DuckDB's
// own integer division gives for integers (rounded toward zero; NULL for b = 0).
func TestIntegerDivisionIsDuckDBs(t *testing.T) {
	db := testParser(t)
	for _, c := range [][2]int64{{7, 2}, {-7, 2}, {7, -2}, {-7, -2}, {0, 3}, {9, 3}, {1, 0}, {-1, 3}, {1 << 40, 3}} {
		velo := (&arithExpr{Op: "//", L: &literal{V: c[0], T: tNum}, R: &literal{V: c[1], T: tNum}}).SQL()
		var got, want sql.NullFloat64
		q := fmt.Sprintf("SELECT %s, CAST(CAST(%d AS BIGINT) // NULLIF(CAST(%d AS BIGINT), 0) AS DOUBLE)", velo, c[0], c[1])
		if err := db.QueryRow(q).Scan(&got, &want); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if got != want {
			t.Errorf("%d // %d: Velo %v, DuckDB %v", c[0], c[1], got, want)
		}
	}
}

// TestDateTruncTotalForm: date_trunc's total form keeps NULL dates NULL where DuckDB's
// optimizer folded date_trunc(u, d) <> a date that is not a bucket start to TRUE (found by a
// 50,000-case generator run), and buckets a date beyond DuckDB's timestamp range (where its
// own date_trunc fails) like any other, without an error.
func TestDateTruncTotalForm(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	data := &genData{persons: 3, tables: map[string][]genRow{"booking": {
		{0, map[string]any{"d_appointment": nil}},
		{1, map[string]any{"d_appointment": day(2024, 2, 10)}},
		{2, map[string]any{"d_appointment": day(5000000, 1, 1)}},
	}}}
	for q, want := range map[string]int64{
		"SELECT COUNT(*) AS n FROM booking WHERE date_trunc('quarter', d_appointment) <> '2024-01-16'":      2,
		"SELECT COUNT(*) AS n FROM booking WHERE NOT (date_trunc('quarter', d_appointment) = '2024-01-16')": 2,
		"SELECT COUNT(*) AS n FROM booking WHERE date_trunc('month', d_appointment) IS NULL":                1,
		"SELECT COUNT(*) AS n FROM booking WHERE date_trunc('year', d_appointment) > '9999-12-31'":          1,
		"SELECT COUNT(*) AS n FROM booking WHERE date_trunc('week', d_appointment) = '2024-02-05'":          1,
	} {
		_, _, groups := runGenData(t, data, q, genAllowLists[0].allow)
		if g := groups[groupID([]any{})]; g == nil || g.vals[0] != want {
			t.Errorf("%s: groups %v, want a count of %d", q, groups, want)
		}
	}
}

// TestCastsBetweenDatesAndNumbersRefused: DuckDB has no such casts (TRY_CAST gives NULL on
// every row, and its optimizer then misreads TRY_CAST(d AS INTEGER) IS DISTINCT FROM NULL),
// so the checker refuses them with what to write instead.
func TestCastsBetweenDatesAndNumbersRefused(t *testing.T) {
	cat, _, err := genCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"SELECT COUNT(*) AS n FROM booking WHERE CAST(d_appointment AS INTEGER) IS DISTINCT FROM NULL",
		"SELECT COUNT(*) AS n FROM booking WHERE CAST(d_appointment AS BOOLEAN)",
		"SELECT COUNT(*) AS n FROM booking WHERE CAST(wait_days AS DATE) > DATE '2024-01-01'",
	} {
		_, err := checkSQL(context.Background(), testParser(t), cat, q, genAllowLists[0].allow)
		var qe *Error
		if !errors.As(err, &qe) || qe.Code != CodeRejected || !strings.Contains(qe.Msg, "cannot be cast") {
			t.Errorf("%s: %v, want a refusal saying the cast cannot be made", q, err)
		}
	}
}
