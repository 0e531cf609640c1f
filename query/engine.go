// Package query is Velo's query engine: it parses a researcher's SQL with DuckDB's own
// parser, checks it against the allow-list and the project's approved columns, rewrites
// it into per-person bounded aggregation, runs the rewrite in a sandboxed DuckDB, and has
// package dp noise every aggregate before anything is released (docs/privacy.md).
//
// Invariants: no exported function returns an un-noised aggregate of the data or a row (a
// dummy run's exact answers are computed on the dummy twin only, which the engine generates
// from the catalog itself: dummy.go); the SQL
// executed is printed from the checked plan, never the user's text; a query is charged
// in the ledger (durably) before any data is read, and once data has been read its charge
// stands and its errors are generic.
package query

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/dp"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/release"
)

// Ledger is what the engine needs of the ledger.
type Ledger interface {
	Project(id string) (ledger.ProjectStatus, error)
	Charge(ctx context.Context, req ledger.ChargeRequest) (ledger.Charge, error)
	Refund(ctx context.Context, c ledger.Charge, reason string) error
	Release(ctx context.Context, c ledger.Charge, raw json.RawMessage) error
	Cached(project, sqlHash, options, datasetVersion string) (json.RawMessage, bool)
	// Active refuses an unknown or expired project (ledger.ErrProjectExpired).
	Active(project string) error
	// Dummy records a query answered on the dummy twin: no charge (ledger.KindDummy).
	Dummy(ctx context.Context, req ledger.DummyRequest) (ledger.Entry, error)
}

// Engine answers DP queries over one dataset. It is safe for concurrent use: identical
// queries in flight are answered once, and at most Limits.MaxConcurrent queries read data
// at once (see Query).
type Engine struct {
	dataDir string
	cat     *dataset.Catalog
	version string
	parser  *sql.DB
	sb      *sandbox
	// backend, when set, computes the exact totals instead of the sandbox, from the
	// statements printed in its dialect (backend.go).
	backend Backend
	dialect dialect
	ledger  Ledger
	log     *slog.Logger
	tree    dp.Tree
	// afterCharge, when set (tests only), runs between the charge and the execution;
	// onWait, when set (tests only), when a request starts waiting for an identical one.
	afterCharge func()
	onWait      func()
	// maxEpsilon is MaxEpsilon; accuracy tests raise it to check the engine's totals
	// through the noise.
	maxEpsilon float64
	// slots bounds the queries that read data at once (Limits.MaxConcurrent).
	slots slots

	// inflight holds the queries and marginals being answered, by release cache key
	// (answerOnce).
	mu       sync.Mutex
	inflight map[string]chan struct{}

	// parsed memoises DuckDB's serialisation of query texts; decoded memoises the
	// ledger's cached releases, decoded (fixed per-query costs, docs/design.md#performance).
	parsed  memo[string]
	decoded memo[*release.Release]

	// The dummy twin (dummy.go), made on the first dummy query.
	limits       Limits
	dummyDir     string
	dummyPersons int
	releaseDir   string // Config.ReleaseDir
	twinMu       sync.Mutex
	twin         *twinState
}

// memo is a bounded map for values derived deterministically from their key: when it
// holds max entries, or maxBytes of what its puts declared, it starts afresh, so a burst
// of distinct keys costs a rebuild, never memory.
type memo[V any] struct {
	mu       sync.Mutex
	m        map[string]V
	bytes    int
	max      int
	maxBytes int
}

func (c *memo[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

// put stores v under k; cost is roughly the bytes both hold.
func (c *memo[V]) put(k string, v V, cost int) {
	if cost > c.maxBytes/4 {
		return // one entry never takes a good part of the memo
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.max || c.bytes+cost > c.maxBytes {
		c.m, c.bytes = make(map[string]V), 0
	}
	c.m[k] = v
	c.bytes += cost
}

// Config opens an Engine.
type Config struct {
	DataDir string
	Ledger  Ledger
	Limits  Limits
	Logger  *slog.Logger
	// DummyDir is where the dataset's dummy twin is written on the first dummy query
	// (replacing what a twin left there); empty: a new temporary directory, removed by
	// Close. DummyPersons is the twin's size (twin.DefaultPersons when 0).
	DummyDir     string
	DummyPersons int
	// ReleaseDir is where the rows of synthetic releases are kept, so that the same request
	// again is answered by the same release at no cost; empty: they are not kept, and the
	// same request again is a new release, charged again.
	ReleaseDir string
	// Backend, when set, computes the exact per-group totals of every query (a cluster:
	// docs/scale.md); nil: the embedded DuckDB sandbox. The engine closes it.
	Backend Backend
}

// Open loads the dataset's catalog and opens the parser and the sandbox.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	// A dataset being replaced (or whose replacement was interrupted) may mix two versions.
	if err := dataset.CheckCommitted(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("open dataset: %w", err)
	}
	limits := cfg.Limits
	limits.defaults()
	sl, err := newSlots(limits)
	if err != nil {
		return nil, err
	}
	cat, err := dataset.ReadCatalog(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	man, err := dataset.ReadManifest(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("open dataset %s: %w", cfg.DataDir, err)
	}
	if man.DatasetVersion != cat.DatasetVersion {
		return nil, fmt.Errorf("dataset %s: catalog is for version %s but the manifest says %s", cfg.DataDir, cat.DatasetVersion, man.DatasetVersion)
	}
	parser, err := openParser(ctx)
	if err != nil {
		return nil, err
	}
	sb, err := openSandbox(ctx, cfg.DataDir, cat, cfg.Limits)
	if err != nil {
		parser.Close()
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{dataDir: cfg.DataDir, cat: cat, version: cat.DatasetVersion, parser: parser, sb: sb, ledger: cfg.Ledger, log: log, tree: quantileTree, slots: sl, maxEpsilon: MaxEpsilon,
		limits: cfg.Limits, dummyDir: cfg.DummyDir, dummyPersons: cfg.DummyPersons, releaseDir: cfg.ReleaseDir,
		parsed: memo[string]{max: 4096, maxBytes: 32 << 20}, decoded: memo[*release.Release]{max: 1024, maxBytes: 64 << 20}}
	if cfg.Backend != nil {
		if e.dialect, err = dialectOf(cfg.Backend); err != nil {
			e.Close()
			return nil, err
		}
		e.backend = cfg.Backend
	}
	return e, nil
}

// Close releases the databases.
func (e *Engine) Close() error {
	var be error
	if e.backend != nil {
		be = e.backend.Close()
	}
	return errors.Join(e.parser.Close(), e.sb.close(), e.closeTwin(), be)
}

// DatasetVersion is the version of the dataset the engine reads.
func (e *Engine) DatasetVersion() string { return e.version }

// Catalog is the dataset's catalog.
func (e *Engine) Catalog() *dataset.Catalog { return e.cat }

// Request is one query.
type Request struct {
	SQL     string
	Project string
	Actor   string // recorded in the ledger: "user:alice", "operator:root"
	Epsilon *float64
	Delta   *float64
	// Bounds clamp the values of the named output aggregates: [lo, hi].
	Bounds map[string][2]float64
	// MaxGroupsContributed overrides the tables' default L0 bound (1..100).
	MaxGroupsContributed int
	DryRun               bool
	// ClampToRange moves every released value and interval end into the range its
	// aggregate can take (counts ≥ 0, averages within their bounds): post-processing of
	// the noisy release, so a cached release is clamped too, and the ledger keeps the
	// unclamped one. OPTIONS(clamp_to_range = true) in the SQL asks the same.
	ClampToRange bool
	// Dummy runs the query on the dataset's dummy twin (dummy.go): checked and priced
	// as it is, answered exactly on made-up data, not charged, recorded as a dummy run.
	Dummy bool
}

// Sentinel errors callers map to statuses.
var (
	// ErrExecution is the generic error of a query that failed after its data was read:
	// its charge stands and nothing about the failure is revealed.
	ErrExecution = errors.New("the query failed while running; its privacy charge stands")
	// ErrInternal is a failure before any data was read; the query was not charged.
	ErrInternal = errors.New("the query could not be prepared; it was not charged")
)

// quantileTree is the engine's quantile tree: 16² = 256 leaves over a quantile's bounds.
// Each value is counted at every level, so a node's noise grows with the height; the
// intervals are read at the first level with 256 nodes, so two levels give them their own
// resolution at half the noise of the library's default 16⁴ (docs/privacy.md, "Quantiles
// of one value share a tree").
var quantileTree = dp.Tree{Branching: 16, Height: 2}

// engineVersion is part of the release cache key: a change in how queries are rewritten
// or noised must not serve releases made the old way.
const engineVersion = "7"

// Confidence is the level of every released confidence interval.
const Confidence = 0.95

// Query checks, prices, charges, runs and releases one query. A query that must read data
// takes one of Limits.MaxConcurrent slots first; when none frees within
// Limits.QueueTimeout it returns a *BusyError, before anything is charged. A query whose
// release is cached, a dry run, and a query identical to one in flight (it waits for that
// one's release) take no slot.
func (e *Engine) Query(ctx context.Context, req Request) (*release.Release, error) {
	rel, clamp, err := e.query(ctx, req)
	if err != nil {
		return nil, err
	}
	annotate(rel, clamp)
	// The policy in force when the release is sent, fresh or from the cache.
	st, err := e.ledger.Project(req.Project)
	if err != nil {
		return nil, err
	}
	applyPolicy(rel, st.OutputPolicy)
	return rel, nil
}

// query is Query without the post-processing every release gets when it is sent: it
// returns the release as recorded, and whether to clamp it.
func (e *Engine) query(ctx context.Context, req Request) (*release.Release, bool, error) {
	st, err := e.ledger.Project(req.Project)
	if err != nil {
		if errors.Is(err, ledger.ErrUnknownProject) {
			return nil, false, &Error{Code: CodeForbidden, Msg: fmt.Sprintf("unknown project %s", req.Project), Pos: -1}
		}
		return nil, false, err
	}
	// An expired project gets nothing: no charge, and no dry run or cached release either.
	if err := e.ledger.Active(req.Project); err != nil {
		return nil, false, err
	}
	plan, err := e.check(ctx, req.SQL, st.Allow)
	if err != nil {
		return nil, false, err
	}
	if err := applyRequest(plan, req); err != nil {
		return nil, false, err
	}
	total, err := resolveBudget(plan, req, st, e.maxEpsilon)
	if err != nil {
		return nil, false, err
	}
	bp, err := planBudget(plan, dp.Budget{Epsilon: total.Epsilon, Delta: total.Delta})
	per, selection := bp.Per, bp.Selection
	if err != nil {
		return nil, false, &Error{Code: CodeOptions, Msg: err.Error(), Pos: -1}
	}
	maxGroups, maxRows := contributionBounds(plan)
	clamp := req.ClampToRange || plan.ClampToRange
	bounding, err := chooseBounding(plan, per, maxGroups, maxRows)
	if err != nil {
		return nil, false, &Error{Code: CodeOptions, Msg: err.Error(), Pos: -1}
	}
	if e.backend != nil {
		// What the backend's dialect cannot print is refused here, before a dry run, a
		// dummy run or a charge (docs/scale.md); the seed does not change what it prints.
		if _, err := e.backendRewrite(plan, bounding.Method, 0, maxGroups, maxRows); err != nil {
			return nil, false, err
		}
	}
	bnd := bounding.Bounds(plan, maxGroups, maxRows)
	info := release.BoundingInfo{Method: bounding.Method, MaxGroupsContributed: maxGroups, MaxRowsPerGroup: maxRows, PartitionSelection: plan.Selection()}
	if bounding.Method == boundingPersonRank {
		info.MaxRowsPerPerson = int(bnd.MaxContributionsPerGroup)
	}
	rel := &release.Release{
		Project: req.Project, DatasetVersion: e.version, Confidence: Confidence,
		Epsilon: total.Epsilon, Delta: total.Delta, SQL: plan.Canonical,
		Bounding: info,
		Columns:  columns(plan, per, bnd, e.tree), BudgetSplit: budgetSplit(plan, bp),
	}
	if plan.Selection() {
		if rel.Selection, err = selectionInfo(plan, per, selection, bounding.PersonGroups(plan, maxGroups, maxRows)); err != nil {
			return nil, false, &Error{Code: CodeOptions, Msg: err.Error(), Pos: -1}
		}
	}
	options := canonicalOptions(total, maxGroups, maxRows, plan)
	if req.Dummy {
		if req.DryRun {
			return nil, false, &Error{Code: CodeOptions, Msg: "dry_run and dummy exclude each other: a dummy run already shows the price", Pos: -1}
		}
		// Never the release cache: a dummy release is neither served from it nor stored.
		rel, err := e.dummy(ctx, req, plan, rel, options, st, bounding, maxGroups, maxRows)
		return rel, clamp, err
	}
	if req.DryRun {
		// Priced against the catalog only: no data is touched, nothing is charged.
		rel.DryRun = true
		rel.Rows, rel.CI = [][]any{}, [][]any{}
		rel.BudgetLeft = release.BudgetAmount{Epsilon: st.Left.Epsilon, Delta: st.Left.Delta}
		return rel, clamp, nil
	}
	var hit *release.Release
	done, err := e.answerOnce(ctx, req.Project+"\x00"+ledger.SQLHash(plan.Canonical)+"\x00"+options, func() (bool, error) {
		r, ok, err := e.cached(req.Project, plan, options)
		hit = r
		return ok, err
	})
	if done == nil {
		return hit, clamp, err
	}
	defer done()
	// Only now, with no release to reuse and none on its way, does the query need a slot.
	free, err := e.slots.acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	defer free()
	rel, err = e.run(ctx, req, plan, rel, options, total, per, selection, bounding, maxGroups, maxRows)
	return rel, clamp, err
}

// answerOnce returns once a request with this release cache key needs answering: it runs
// cached, and when that finds nothing and no identical request is being answered, it
// returns done, which the caller runs once it has answered (its release recorded, or its
// failure). An identical request arriving meanwhile (dashboard panels refreshing together,
// a notebook cell run twice) waits for the first and asks cached again, instead of being
// charged twice. done is nil when cached found the release or failed (err), or ctx ended.
func (e *Engine) answerOnce(ctx context.Context, key string, cached func() (bool, error)) (done func(), err error) {
	for {
		if ok, err := cached(); ok || err != nil {
			return nil, err
		}
		e.mu.Lock()
		wait, busy := e.inflight[key]
		if !busy {
			if e.inflight == nil {
				e.inflight = map[string]chan struct{}{}
			}
			ch := make(chan struct{})
			e.inflight[key] = ch
			e.mu.Unlock()
			return func() {
				e.mu.Lock()
				delete(e.inflight, key)
				e.mu.Unlock()
				close(ch)
			}, nil
		}
		e.mu.Unlock()
		if e.onWait != nil {
			e.onWait()
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// cached returns the stored release of a query, if there is one. The ledger keeps the
// first release of a key for good, so its decoded form is memoised; each answer gets its
// own copy of what annotate changes.
func (e *Engine) cached(project string, plan *plan, options string) (*release.Release, bool, error) {
	hash := ledger.SQLHash(plan.Canonical)
	key := project + "\x00" + hash + "\x00" + options
	tmpl, ok := e.decoded.get(key)
	if !ok {
		raw, found := e.ledger.Cached(project, hash, options, e.version)
		if !found {
			return nil, false, nil
		}
		tmpl = new(release.Release)
		if err := json.Unmarshal(raw, tmpl); err != nil {
			return nil, false, fmt.Errorf("cached release: %w", err)
		}
		e.decoded.put(key, tmpl, len(key)+4*len(raw)) // decoded, a release takes a few times its JSON
	}
	cached := *tmpl
	cached.Rows = cloneCells(tmpl.Rows)
	cached.CI = cloneCells(tmpl.CI)
	cached.Cached = true
	e.budgetLeft(project, &cached.BudgetLeft)
	return &cached, true, nil
}

// cloneCells copies a release's rows (or intervals) down to the cells, which are values.
func cloneCells(rows [][]any) [][]any {
	if rows == nil {
		return nil
	}
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = slices.Clone(r)
	}
	return out
}

// run charges, executes and releases a query that is not in the cache.
func (e *Engine) run(ctx context.Context, req Request, plan *plan, rel *release.Release, options string, total release.BudgetAmount, per, selection dp.Budget, bounding *boundingRule, maxGroups, maxRows int) (*release.Release, error) {
	seed, err := randomUint64()
	if err != nil {
		return nil, err
	}
	rw := bounding.Rewrite(plan, seed, maxGroups, maxRows, treeShape{e.tree.Branching, e.tree.Height}, dp.SumScale)
	keyDomains := make([]*keyDomain, len(plan.Keys))
	for i, k := range plan.Keys {
		keyDomains[i] = k.Domain
	}
	// Bound once, before the charge, on a connection held until the query has run: what
	// runs after the charge is the statement bound here.
	bound, err := e.sb.bind(ctx, rw, keyDomains)
	if err != nil {
		e.log.Error("prepare rewrite", "project", req.Project, "class", errorClass(err))
		return nil, ErrInternal
	}
	defer bound.close()
	domains := bound.domains
	if e.backend != nil {
		bound.close() // the backend runs the query; DuckDB only resolved the domains
		// The same plan and bounds, printed for the backend and bound there (no data
		// read), before the charge.
		if rw, err = e.backendRewrite(plan, bounding.Method, seed, maxGroups, maxRows); err != nil {
			return nil, err
		}
		if err := bindBackend(ctx, e.backend, rw); err != nil {
			e.log.Error("prepare rewrite on the backend", "project", req.Project, "engine", e.backend.Dialect(), "class", errorClass(err))
			return nil, ErrInternal
		}
	}
	mech, _ := json.Marshal(struct {
		Split    []release.SplitEntry `json:"budget_split"`
		Bounding release.BoundingInfo `json:"bounding"`
	}{rel.BudgetSplit, rel.Bounding})
	charge, err := e.ledger.Charge(ctx, ledger.ChargeRequest{
		Actor: req.Actor, Project: req.Project, SQL: plan.Canonical, Text: req.SQL, Options: options,
		DatasetVersion: e.version, Cost: ledger.Budget{Epsilon: total.Epsilon, Delta: total.Delta}, Mechanisms: mech,
	})
	if err != nil {
		return nil, err
	}
	// From here on the charge stands, whatever happens (docs/privacy.md#errors-and-timing).
	ctx = context.WithoutCancel(ctx)
	if e.afterCharge != nil {
		e.afterCharge()
	}
	var groups map[string]*groupRow
	if e.backend != nil {
		bctx, cancel := context.WithTimeout(ctx, e.sb.limits.Timeout)
		groups, err = runBackend(bctx, e.backend, rw, len(plan.Keys))
		cancel()
	} else {
		groups, err = bound.run(ctx, len(plan.Keys))
	}
	bound.close()
	if errors.Is(err, errNotStarted) {
		// Nothing was read: the charge is refunded (docs/privacy.md#errors-and-timing).
		e.log.Error("query not started", "project", req.Project, "charge", charge.Seq, "class", errorClass(err))
		if rerr := e.ledger.Refund(ctx, charge, "failed before reading data"); rerr != nil {
			return nil, fmt.Errorf("refund: %w", rerr)
		}
		return nil, ErrInternal
	}
	if err != nil {
		// The cause may quote data: only its class reaches the operator's log.
		e.log.Error("query execution failed", "project", req.Project, "charge", charge.Seq, "class", errorClass(err))
		return nil, ErrExecution
	}
	rows, cis, kept, err := noiseRelease(plan, rw, domains, groups, per, selection, Confidence, e.tree)
	if err != nil {
		e.log.Error("noise failed", "project", req.Project, "charge", charge.Seq, "err", err)
		return nil, ErrExecution
	}
	rel.Rows, rel.CI = rows, cis
	if rel.Selection != nil {
		rel.Selection.GroupsKept = &kept
	}
	keyLabels(plan, e.cat, rel)
	rel.ReleaseID = releaseID(releaseQuery, charge.Seq)
	left, err := e.recordRelease(ctx, charge, req.Project, rel)
	if err != nil {
		return nil, err
	}
	if left != nil {
		rel.BudgetLeft = *left
	}
	return rel, nil
}

// recordRelease records a charged query's release (any JSON form) in the ledger and returns
// the project's budget left after it (nil when the ledger cannot say).
func (e *Engine) recordRelease(ctx context.Context, charge ledger.Charge, project string, rel any) (*release.BudgetAmount, error) {
	raw, err := json.Marshal(rel)
	if err != nil {
		return nil, err
	}
	if err := e.ledger.Release(ctx, charge, raw); err != nil {
		return nil, fmt.Errorf("record release: %w", err)
	}
	st, err := e.ledger.Project(project)
	if err != nil {
		return nil, nil
	}
	return &release.BudgetAmount{Epsilon: st.Left.Epsilon, Delta: st.Left.Delta}, nil
}

// budgetLeft sets *into to what the project has left as the ledger says now (unchanged if
// it cannot say).
func (e *Engine) budgetLeft(project string, into *release.BudgetAmount) {
	if st, err := e.ledger.Project(project); err == nil {
		*into = release.BudgetAmount{Epsilon: st.Left.Epsilon, Delta: st.Left.Delta}
	}
}

// Check parses and checks a query against the catalog and an allow-list, without
// pricing or running it: nil, or the *Error that Query would refuse it with.
func (e *Engine) Check(ctx context.Context, sqlText string, allow map[string][]string) error {
	_, err := checkSQL(ctx, e.parser, e.cat, sqlText, allow)
	return err
}

// check is Check, keeping the checked plan. DuckDB's serialisation of a text is
// memoised: the same text always parses the same way.
func (e *Engine) check(ctx context.Context, sqlText string, allow map[string][]string) (*plan, error) {
	return checkSQLWith(ctx, func(ctx context.Context, lifted string) (string, error) {
		if js, ok := e.parsed.get(lifted); ok {
			return js, nil
		}
		js, err := serializeSQL(ctx, e.parser, lifted)
		if err == nil {
			e.parsed.put(lifted, js, len(lifted)+len(js))
		}
		return js, err
	}, e.cat, sqlText, allow)
}

// serializeSQL has DuckDB's parser serialise a statement to JSON.
func serializeSQL(ctx context.Context, parser *sql.DB, lifted string) (string, error) {
	var js string
	err := parser.QueryRowContext(ctx, "SELECT CAST(json_serialize_sql(CAST(? AS VARCHAR)) AS VARCHAR)", lifted).Scan(&js)
	return js, err
}

// checkSQL lifts the DP clause, has DuckDB parse the rest, and checks the AST.
func checkSQL(ctx context.Context, parser *sql.DB, cat *dataset.Catalog, sqlText string, allow map[string][]string) (*plan, error) {
	return checkSQLWith(ctx, func(ctx context.Context, lifted string) (string, error) {
		return serializeSQL(ctx, parser, lifted)
	}, cat, sqlText, allow)
}

// checkSQLWith is checkSQL with the parser's serialisation given as a function.
func checkSQLWith(ctx context.Context, serialize func(context.Context, string) (string, error), cat *dataset.Catalog, sqlText string, allow map[string][]string) (*plan, error) {
	if strings.TrimSpace(sqlText) == "" {
		return nil, rejectf(-1, "empty query")
	}
	if len(sqlText) > 64<<10 {
		return nil, rejectf(-1, "query longer than 64 KiB")
	}
	// DuckDB's parser reads up to a NUL byte, so text after one would be recorded in the
	// ledger without ever having been parsed or checked.
	if i := strings.IndexByte(sqlText, 0); i >= 0 {
		return nil, rejectf(i, "the query contains a NUL byte")
	}
	if !utf8.ValidString(sqlText) {
		return nil, rejectf(-1, "the query is not valid UTF-8")
	}
	lifted, opts, at, err := liftDPClause(sqlText)
	if err != nil {
		return nil, &Error{Code: CodeRejected, Msg: err.Error(), Pos: at}
	}
	js, err := serialize(ctx, lifted)
	if err != nil {
		return nil, rejectf(-1, "the query could not be parsed")
	}
	var res astResult
	dec := json.NewDecoder(strings.NewReader(quoteNonFinite(js)))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		return nil, rejectf(-1, "the query could not be parsed")
	}
	plan, err := check(&res, cat, allow)
	if err != nil {
		var qe *Error
		if errors.As(err, &qe) {
			qe.locate(lifted)
		}
		return nil, err
	}
	if err := applyClauseOptions(plan, opts); err != nil {
		var qe *Error
		if errors.As(err, &qe) && qe.Pos < 0 {
			qe.Pos = at // the OPTIONS clause
		}
		return nil, err
	}
	plan.Canonical = plan.canonical()
	return plan, nil
}

// openParser opens the database that only serialises SQL: it holds no data and never
// executes user SQL.
func openParser(ctx context.Context) (*sql.DB, error) {
	parser, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	// Concurrent requests each parse on a connection; keep them open rather than open a
	// DuckDB connection per request beyond database/sql's default two idle ones.
	parser.SetMaxIdleConns(16)
	for _, q := range []string{"SET enable_external_access = false", "SET autoload_known_extensions = false", "SET autoinstall_known_extensions = false", "SET lock_configuration = true"} {
		if _, err := parser.ExecContext(ctx, q); err != nil {
			parser.Close()
			return nil, err
		}
	}
	return parser, nil
}

func applyClauseOptions(p *plan, opts map[string]string) error {
	for name := range opts {
		switch name {
		case "epsilon", "delta", "max_groups_contributed", "clamp_to_range":
		default:
			return &Error{Code: CodeOptions, Msg: fmt.Sprintf("unknown option %s (epsilon, delta, max_groups_contributed, clamp_to_range)", name), Pos: -1}
		}
	}
	if v, ok := opts["clamp_to_range"]; ok {
		switch strings.ToLower(v) {
		case "true":
			p.ClampToRange = true
		case "false":
		default:
			return &Error{Code: CodeOptions, Msg: fmt.Sprintf("option clamp_to_range: %q is not true or false", v), Pos: -1}
		}
	}
	var err error
	if p.Epsilon, err = parseFloatOption(opts, "epsilon"); err != nil {
		return &Error{Code: CodeOptions, Msg: err.Error(), Pos: -1}
	}
	if p.Delta, err = parseFloatOption(opts, "delta"); err != nil {
		return &Error{Code: CodeOptions, Msg: err.Error(), Pos: -1}
	}
	g, err := parseFloatOption(opts, "max_groups_contributed")
	if err != nil {
		return &Error{Code: CodeOptions, Msg: err.Error(), Pos: -1}
	}
	if g != nil {
		if *g < 1 || *g > 100 || *g != math.Trunc(*g) {
			return &Error{Code: CodeOptions, Msg: "max_groups_contributed must be an integer from 1 to 100", Pos: -1}
		}
		p.MaxGroupsContributed = int(*g)
	}
	return nil
}

// applyRequest applies the request's options over the SQL clause's.
func applyRequest(p *plan, req Request) error {
	if req.MaxGroupsContributed != 0 {
		if req.MaxGroupsContributed < 1 || req.MaxGroupsContributed > 100 {
			return &Error{Code: CodeOptions, Msg: "max_groups_contributed must be from 1 to 100", Pos: -1}
		}
		p.MaxGroupsContributed = req.MaxGroupsContributed
	}
	for name, b := range req.Bounds {
		found := false
		for i := range p.Aggs {
			a := &p.Aggs[i]
			if a.Name != name {
				continue
			}
			found = true
			if !a.Kind.rule().Value {
				return &Error{Code: CodeOptions, Msg: fmt.Sprintf("bounds for %s: counts take no bounds", name), Pos: -1}
			}
			if !validBounds(b[0], b[1]) {
				return &Error{Code: CodeOptions, Msg: fmt.Sprintf("bounds for %s must be %s", name, boundsRule), Pos: -1}
			}
			a.Lo, a.Hi, a.BoundsSrc = b[0], b[1], "request"
		}
		if !found {
			return &Error{Code: CodeOptions, Msg: fmt.Sprintf("bounds given for %s, which is not an aggregate of the query", name), Pos: -1}
		}
	}
	return nil
}

// resolveBudget picks the query's epsilon and delta (request, then SQL clause, then the
// project's defaults) and checks them against the project's caps. A refusal says where
// the refused value came from.
func resolveBudget(p *plan, req Request, st ledger.ProjectStatus, maxEpsilon float64) (release.BudgetAmount, error) {
	eps, delta := st.DefaultEpsilon, st.DefaultDelta
	epsFrom, deltaFrom := "the project's default epsilon", "the project's default delta"
	if p.Epsilon != nil {
		eps, epsFrom = *p.Epsilon, "epsilon in OPTIONS(...)"
	}
	if p.Delta != nil {
		delta, deltaFrom = *p.Delta, "delta in OPTIONS(...)"
	}
	if req.Epsilon != nil {
		eps, epsFrom = *req.Epsilon, "the request's epsilon"
	}
	if req.Delta != nil {
		delta, deltaFrom = *req.Delta, "the request's delta"
	}
	bad := func(format string, args ...any) (release.BudgetAmount, error) {
		return release.BudgetAmount{}, &Error{Code: CodeOptions, Msg: fmt.Sprintf(format, args...), Pos: -1}
	}
	if delta == 0 {
		delta = 0 // -0 is 0: one canonical value, one cache key
	}
	declared := req.Epsilon != nil || p.Epsilon != nil
	switch {
	case !declared && eps == 0:
		return bad("epsilon is required: the project has no default epsilon, so give one from %g to %g (the request's epsilon, or OPTIONS(epsilon = 0.5))", MinEpsilon, maxEpsilon)
	case !finite(eps) || eps < MinEpsilon || eps > maxEpsilon:
		return bad("%s is %g, outside the range Velo accepts: epsilon must be a number from %g to %g", epsFrom, eps, MinEpsilon, maxEpsilon)
	case !finite(delta) || delta != 0 && (delta < MinDelta || delta > MaxDelta):
		return bad("%s is %g, outside the range Velo accepts: delta must be 0, or a number from %g to %g", deltaFrom, delta, MinDelta, MaxDelta)
	}
	// What is released, noised and charged is one value: the ledger's, rounded up to its
	// units (epsilon 1e-12, delta 1e-18).
	charged, err := ledger.Charged(ledger.Budget{Epsilon: eps, Delta: delta})
	if err != nil {
		return bad("%v", err)
	}
	eps, delta = charged.Epsilon, charged.Delta
	switch {
	case st.MaxEpsilonPerQuery > 0 && eps > st.MaxEpsilonPerQuery:
		return bad("%s is %g, over the project's per-query cap %g", epsFrom, eps, st.MaxEpsilonPerQuery)
	case st.MaxDeltaPerQuery > 0 && delta > st.MaxDeltaPerQuery:
		return bad("%s is %g, over the project's per-query cap %g", deltaFrom, delta, st.MaxDeltaPerQuery)
	case p.Selection() && delta == 0:
		return bad("%s, so groups are chosen by DP partition selection, which needs delta > 0 (e.g. delta = 1e-6), and %s is 0: give a delta, or group by keys with a public domain (catalog domains, date_trunc of a period date) so that every group is released", noDomainKeys(p), deltaFrom)
	}
	return release.BudgetAmount{Epsilon: eps, Delta: delta}, nil
}

// noDomainKeys says which GROUP BY keys have no public domain.
func noDomainKeys(p *plan) string {
	var names []string
	for _, k := range p.Keys {
		if k.Domain == nil {
			names = append(names, k.Name)
		}
	}
	if len(names) == 1 {
		return "the GROUP BY key " + names[0] + " has no public domain"
	}
	return "the GROUP BY keys " + strings.Join(names, ", ") + " have no public domain"
}

// The ranges of epsilon and delta one query may declare (docs/privacy.md). Below
// MinEpsilon an answer is noise; above MaxEpsilon it is the data. A delta is 0 (pure DP)
// or at least MinDelta (smaller ones are not distinguishable from 0 in the ledger's
// arithmetic) and at most MaxDelta (a larger delta is no guarantee). Within these ranges
// the ledger's fixed-point units survive the round trip through float64, so the release
// states exactly what is charged. Project policy narrows them further.
const (
	MinEpsilon = 1e-6
	MaxEpsilon = 1000.0
	MinDelta   = 1e-12
	MaxDelta   = 1e-3
)

// contributionBounds picks the L0 and per-group row bounds: the request's or clause's
// max_groups_contributed, else the largest default of the tables used (the fact table's,
// in a join with person); rows per group likewise. The rewrite enforces whatever is
// chosen, so the choice affects accuracy, never the guarantee.
func contributionBounds(p *plan) (maxGroups, maxRows int) {
	maxGroups, maxRows = 1, 1
	for _, t := range p.Tables {
		maxGroups = max(maxGroups, t.Meta.MaxGroupsContributed)
		maxRows = max(maxRows, t.Meta.MaxRowsPerGroup)
	}
	if p.MaxGroupsContributed > 0 {
		maxGroups = p.MaxGroupsContributed
	}
	if len(p.Keys) == 0 {
		maxGroups = 1
	}
	return maxGroups, maxRows
}

// columns describes the outputs: keys with their SQL type; aggregates with their kind,
// bounds, the range of their values and, where the registry has one, an accuracy note (from
// the budget share per mechanism and the bounding, public).
func columns(p *plan, per dp.Budget, bnd dp.Bounding, tree dp.Tree) []release.Column {
	out := make([]release.Column, len(p.Outputs))
	for i, o := range p.Outputs {
		if o.Key >= 0 {
			out[i] = release.Column{Name: o.Name, Type: sqlType(p.Keys[o.Key].Expr.Type()), Kind: "key"}
			continue
		}
		a := p.Aggs[o.Agg]
		rule := a.Kind.rule()
		out[i] = release.Column{Name: o.Name, Type: "DOUBLE", Kind: "dp", Aggregate: string(a.Kind), Range: valueRange(a)}
		if rule.Value {
			out[i].Bounds = &[2]float64{a.Lo, a.Hi}
		}
		if rule.Accuracy != nil {
			out[i].Accuracy = rule.Accuracy(a, per, bnd, tree, Confidence)
		}
	}
	return out
}

func sqlType(t typ) string {
	switch t {
	case tNum:
		return "DOUBLE"
	case tString:
		return "VARCHAR"
	case tDate:
		return "DATE"
	case tBool:
		return "BOOLEAN"
	}
	return "NULL"
}

func budgetSplit(p *plan, bp budgetPlan) []release.SplitEntry {
	entry := release.SplitEntry{Mechanism: string(dp.ChooseMechanism(bp.Per)), Epsilon: bp.Share.Epsilon, Delta: bp.Share.Delta}
	if bp.ZCDP {
		entry.Mechanism, entry.Rho = "gaussian (zCDP)", bp.Rho
	}
	var out []release.SplitEntry
	owner := p.treeOwners()
	for j, a := range p.Aggs {
		if owner[j] != j {
			continue // read off its owner's tree: named there
		}
		parts := a.Kind.rule().Parts
		if len(parts) == 1 {
			entry.For = a.Name
			var readers []string
			for i, o := range owner {
				if o == j {
					readers = append(readers, p.Aggs[i].Name)
				}
			}
			if len(readers) > 1 {
				entry.For = strings.Join(readers, ", ") + " (one quantile tree)"
			}
			out = append(out, entry)
			continue
		}
		for _, part := range parts {
			entry.For = a.Name + " (" + part + ")"
			out = append(out, entry)
		}
	}
	if p.Thresholded() {
		out = append(out, release.SplitEntry{For: "partition selection", Mechanism: thresholdMechanism, Epsilon: bp.Selection.Epsilon, Delta: bp.Selection.Delta})
	} else if p.Selection() {
		out = append(out, release.SplitEntry{For: "partition selection", Mechanism: "preagg_select_partition", Epsilon: bp.Selection.Epsilon, Delta: bp.Selection.Delta})
	}
	return out
}

// canonicalOptions is the options part of the release cache key and ledger entry.
func canonicalOptions(b release.BudgetAmount, maxGroups, maxRows int, p *plan) string {
	parts := []string{
		"engine=" + engineVersion,
		"epsilon=" + strconv.FormatFloat(b.Epsilon, 'g', -1, 64),
		"delta=" + strconv.FormatFloat(b.Delta, 'g', -1, 64),
		"max_groups_contributed=" + strconv.Itoa(maxGroups),
		"max_rows_per_group=" + strconv.Itoa(maxRows),
	}
	var bounds []string
	for _, a := range p.Aggs {
		if a.Kind.rule().Value {
			bounds = append(bounds, fmt.Sprintf("%s:[%g,%g]", a.Name, a.Lo, a.Hi))
		}
	}
	sort.Strings(bounds)
	if len(bounds) > 0 {
		parts = append(parts, "bounds="+strings.Join(bounds, ";"))
	}
	return strings.Join(parts, "&")
}

func randomUint64() (uint64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// Release ids: a prefix for what was released (r_ a query, m_ marginals, s_ synthetic
// data), the number of the ledger's charge entry and a random suffix; a dummy run's is d_
// and the number of its ledger entry.
const (
	releaseQuery     = "r_"
	releaseMarginals = "m_"
	releaseSynthetic = "s_"
	releaseDummy     = "d_"
)

// IsSyntheticReleaseID says whether a release id names a synthetic release.
func IsSyntheticReleaseID(id string) bool { return strings.HasPrefix(id, releaseSynthetic) }

func releaseID(prefix string, seq uint64) string {
	return prefix + strconv.FormatUint(seq, 10) + "_" + randomHex(6)
}

// What a charge paid for, as its options say (kind=…; a query's options have no kind).
const (
	KindQuery     = "query"
	KindMarginals = "marginals"
	KindSynthetic = "synthetic"
)

// ChargeKind is what a charge with these options (a ledger entry's Options) paid for.
func ChargeKind(options string) string {
	for _, kv := range strings.Split(options, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == "kind" {
			return v
		}
	}
	return KindQuery
}

// DummyReleaseID is the release id of the dummy run recorded at ledger entry seq.
func DummyReleaseID(seq uint64) string { return releaseDummy + strconv.FormatUint(seq, 10) }

var releaseIDPattern = regexp.MustCompile(`^(?:([rms]_)([0-9]{1,20})_[0-9a-f]{12}|(d_)([0-9]{1,20}))$`)

// ParseReleaseID reads a release id: the number of the ledger entry it names (a charge's,
// or a dummy run's for a dummy release) and whether it is a dummy run's.
func ParseReleaseID(id string) (seq uint64, dummy, ok bool) {
	m := releaseIDPattern.FindStringSubmatch(id)
	if m == nil {
		return 0, false, false
	}
	seq, err := strconv.ParseUint(m[2]+m[4], 10, 64)
	return seq, m[3] == releaseDummy, err == nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
