package query

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/dp"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/release"
	"github.com/velo-fse/velo/synthesize"
)

// Limits of one marginals or synthesis request.
const (
	MaxMarginalSets       = 64
	MaxMarginalAttributes = 3
	MaxSyntheticRows      = 20_000_000
	MaxSyntheticColumns   = 32
)

// MarginalsRequest asks for DP contingency tables of one table.
type MarginalsRequest struct {
	Project, Actor string
	Table          string
	// Join are tables of one row per person (person) joined to Table on pid: their
	// columns are attributes named table.column, and a row is a row of Table with its
	// person's row of each.
	Join []string
	// Sets are the attribute sets, each of 1 to 3 column names.
	Sets [][]string
	// Bins is the number of equal-width bins of numeric attributes (0: DefaultBins).
	Bins           int
	Epsilon, Delta *float64
	// MaxGroupsContributed overrides the table's cells per person (1..100).
	MaxGroupsContributed int
	// MaxRowsPerGroup overrides the table's rows per person in a cell (1..100).
	MaxRowsPerGroup int
	// DryRun validates and prices the request, and gives each table's noise and interval
	// half-width, without charging and without reading data: the release has no cells.
	DryRun bool
}

// MarginalBounding is the per-person bounding a release applied and the sensitivities it
// gives a contingency table (docs/privacy.md#sensitivity-of-a-contingency-table).
type MarginalBounding struct {
	// Method is per_group (each marginal on its own: C cells of R rows per person) or, for
	// synthesis, person_rows (k rows per person, the same in every marginal); empty is
	// per_group.
	Method               string  `json:"method,omitempty"`
	MaxRowsPerPerson     int     `json:"max_rows_per_person,omitempty"`
	MaxGroupsContributed int     `json:"max_groups_contributed"`
	MaxRowsPerGroup      int     `json:"max_rows_per_group"`
	L1                   float64 `json:"l1_sensitivity"`
	L2                   float64 `json:"l2_sensitivity"`
}

// MarginalCell is one noisy cell with its 95% interval.
type MarginalCell struct {
	Levels  []any   `json:"levels"`
	Count   float64 `json:"count"`
	CILower float64 `json:"ci_lower"`
	CIUpper float64 `json:"ci_upper"`
}

// MarginalTable is one noisy contingency table: every cell of the attributes' domains.
type MarginalTable struct {
	Attributes []string `json:"attributes"`
	Sigma      float64  `json:"sigma"`
	Rho        float64  `json:"rho"`
	// CIHalfWidth is every cell's 95% interval half-width, 1.96σ.
	CIHalfWidth float64        `json:"ci_half_width"`
	Cells       []MarginalCell `json:"cells"`
}

// MarginalsRelease is a DP release of contingency tables: one ledger entry.
type MarginalsRelease struct {
	ReleaseID      string               `json:"release_id"`
	Project        string               `json:"project"`
	DatasetVersion string               `json:"dataset_version"`
	Table          string               `json:"table"`
	Join           []string             `json:"join,omitempty"`
	Epsilon        float64              `json:"epsilon"`
	Delta          float64              `json:"delta"`
	Rho            float64              `json:"rho"`
	Confidence     float64              `json:"confidence"`
	Mechanism      string               `json:"mechanism"`
	Bounding       MarginalBounding     `json:"bounding"`
	Attributes     []*MarginalAttribute `json:"attributes"`
	Tables         []MarginalTable      `json:"tables"`
	BudgetLeft     release.BudgetAmount `json:"budget_left"`
	// Cached: the release recorded for the same request earlier, served at no cost.
	Cached bool `json:"cached,omitempty"`
	// DryRun: validated and priced only (MarginalsRequest.DryRun): no cells, no charge.
	DryRun bool `json:"dry_run,omitempty"`
}

// WriteCSV writes the tables in long form: one row per cell, the marginal's number, up to
// three attribute/level pairs, the noisy count and its interval.
func (r *MarginalsRelease) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	header := []string{"marginal"}
	for i := 1; i <= MaxMarginalAttributes; i++ {
		header = append(header, fmt.Sprintf("attribute_%d", i), fmt.Sprintf("level_%d", i))
	}
	header = append(header, "count", "ci_lower", "ci_upper")
	if err := cw.Write(header); err != nil {
		return err
	}
	num := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	for ti, t := range r.Tables {
		for _, c := range t.Cells {
			row := []string{strconv.Itoa(ti + 1)}
			for i := range MaxMarginalAttributes {
				if i < len(t.Attributes) {
					row = append(row, t.Attributes[i], fmt.Sprint(c.Levels[i]))
				} else {
					row = append(row, "", "")
				}
			}
			row = append(row, num(c.Count), num(c.CILower), num(c.CIUpper))
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func optionsError(format string, args ...any) *Error {
	return &Error{Code: CodeOptions, Msg: fmt.Sprintf(format, args...), Pos: -1}
}

// dataRelease is what marginals and synthesis share before reading data: the project, its
// budget converted to zCDP, the table and the attributes' counter.
type dataRelease struct {
	st     ledger.ProjectStatus
	total  release.BudgetAmount
	budget synthesize.Budget
	table  *dataset.CatalogTable
	joins  []*dataset.CatalogTable
	mc     *marginalCounter
}

func (e *Engine) startDataRelease(project, table string, joins []string, eps, delta *float64, maxGroups, maxRows, bins int) (*dataRelease, error) {
	st, err := e.ledger.Project(project)
	if err != nil {
		if errors.Is(err, ledger.ErrUnknownProject) {
			return nil, &Error{Code: CodeForbidden, Msg: fmt.Sprintf("unknown project %s", project), Pos: -1}
		}
		return nil, err
	}
	if err := e.ledger.Active(project); err != nil {
		return nil, err
	}
	total, err := resolveBudget(&plan{}, Request{Epsilon: eps, Delta: delta}, st, e.maxEpsilon)
	if err != nil {
		return nil, err
	}
	if total.Delta == 0 {
		return nil, optionsError("DP marginals and synthetic data add Gaussian noise (accounted in zCDP), which needs delta > 0: give a delta, e.g. 1e-6")
	}
	b, err := synthesize.NewBudget(total.Epsilon, total.Delta)
	if err != nil {
		return nil, optionsError("%v", err)
	}
	i := slices.IndexFunc(e.cat.Tables, func(t dataset.CatalogTable) bool { return t.Name == table })
	if i < 0 {
		return nil, &Error{Code: CodeRejected, Msg: fmt.Sprintf("no table %q in the catalog", table), Pos: -1}
	}
	var joined []*dataset.CatalogTable
	for _, name := range joins {
		j := slices.IndexFunc(e.cat.Tables, func(t dataset.CatalogTable) bool { return t.Name == name })
		switch {
		case j < 0:
			return nil, &Error{Code: CodeRejected, Msg: fmt.Sprintf("no table %q in the catalog to join", name), Pos: -1}
		case name == table || slices.ContainsFunc(joined, func(t *dataset.CatalogTable) bool { return t.Name == name }):
			return nil, optionsError("table %s is named twice", name)
		case e.cat.Tables[j].MaxGroupsContributed*e.cat.Tables[j].MaxRowsPerGroup != 1:
			return nil, optionsError("join names tables of one row per person (such as person), whose columns then describe each row of %s; %s has up to %d rows per person: make it the table instead", table, name, e.cat.Tables[j].MaxGroupsContributed*e.cat.Tables[j].MaxRowsPerGroup)
		}
		joined = append(joined, &e.cat.Tables[j])
	}
	if maxGroups != 0 && (maxGroups < 1 || maxGroups > 100) {
		return nil, optionsError("max_groups_contributed must be from 1 to 100")
	}
	if maxRows != 0 && (maxRows < 1 || maxRows > 100) {
		return nil, optionsError("max_rows_per_group must be from 1 to 100")
	}
	if bins == 0 {
		bins = DefaultBins
	}
	if bins < 2 || bins > MaxBins {
		return nil, optionsError("bins must be from 2 to %d, got %d", MaxBins, bins)
	}
	seed, err := randomUint64()
	if err != nil {
		return nil, err
	}
	return &dataRelease{st: st, total: total, budget: b, table: &e.cat.Tables[i], joins: joined,
		mc: &marginalCounter{e: e, table: table, joins: slices.Clone(joins), allow: st.Allow, seed: seed, maxGroups: maxGroups, maxRows: maxRows}}, nil
}

// attribute returns the index of the named attribute, resolving it on first use: a column
// of the release's table (column, or table.column), or of a joined table (table.column).
func (dr *dataRelease) attribute(cat *dataset.Catalog, name string, bins int) (int, error) {
	t, column, display := dr.table, name, name
	if tn, c, ok := strings.Cut(name, "."); ok {
		switch j := slices.IndexFunc(dr.joins, func(t *dataset.CatalogTable) bool { return t.Name == tn }); {
		case tn == dr.table.Name:
			column, display = c, c
		case j >= 0:
			t, column = dr.joins[j], c
		default:
			return 0, &Error{Code: CodeRejected, Msg: fmt.Sprintf("%s names table %s, which is neither %s nor joined to it", name, tn, dr.table.Name), Pos: -1}
		}
	} else if len(dr.joins) > 0 && !slices.ContainsFunc(dr.table.Columns, func(c dataset.CatalogColumn) bool { return c.Name == name }) {
		for _, j := range dr.joins {
			if slices.ContainsFunc(j.Columns, func(c dataset.CatalogColumn) bool { return c.Name == name }) {
				return 0, &Error{Code: CodeRejected, Msg: fmt.Sprintf("%s has no column %s: name the joined table's column %s.%s", dr.table.Name, name, j.Name, name), Pos: -1}
			}
		}
	}
	if i := slices.IndexFunc(dr.mc.attrs, func(a *MarginalAttribute) bool { return a.Name == display }); i >= 0 {
		return i, nil
	}
	if bins == 0 {
		bins = DefaultBins
	}
	a, err := resolveColumn(cat, t, column, display, len(dr.joins) > 0, bins)
	if err != nil {
		return 0, err
	}
	dr.mc.attrs = append(dr.mc.attrs, a)
	return len(dr.mc.attrs) - 1, nil
}

// prepareError maps a failure to prepare a marginal: a refusal as it is, anything else
// (nothing was read) as ErrInternal, its class logged.
func (e *Engine) prepareError(project string, err error) error {
	var qe *Error
	if errors.As(err, &qe) {
		return qe
	}
	e.log.Error("prepare marginal", "project", project, "class", errorClass(err))
	return ErrInternal
}

// Marginals releases noisy contingency tables of one table for one ledger charge: checked
// against the project's allow-list and budget, charged (ε, δ) before any data is read, each
// table's exact bounded counts noised with the Gaussian mechanism at an equal share of
// ρ = CDPRho(ε, δ) (docs/privacy.md#sensitivity-of-a-contingency-table). The same request
// again is answered by the recorded release, at no cost (Cached).
func (e *Engine) Marginals(ctx context.Context, req MarginalsRequest) (*MarginalsRelease, error) {
	if len(req.Sets) == 0 || len(req.Sets) > MaxMarginalSets {
		return nil, optionsError("give from 1 to %d attribute sets, got %d", MaxMarginalSets, len(req.Sets))
	}
	dr, err := e.startDataRelease(req.Project, req.Table, req.Join, req.Epsilon, req.Delta, req.MaxGroupsContributed, req.MaxRowsPerGroup, req.Bins)
	if err != nil {
		return nil, err
	}
	var sets [][]int
	for _, s := range req.Sets {
		if len(s) == 0 || len(s) > MaxMarginalAttributes {
			return nil, optionsError("each attribute set has 1 to %d columns, got %d", MaxMarginalAttributes, len(s))
		}
		var idx []int
		for _, name := range s {
			i, err := dr.attribute(e.cat, name, req.Bins)
			if err != nil {
				return nil, err
			}
			if slices.Contains(idx, i) {
				return nil, optionsError("the attribute set %v names %s twice", s, name)
			}
			idx = append(idx, i)
		}
		sets = append(sets, idx)
	}
	prepared := make([]*preparedMarginal, len(sets))
	for i, s := range sets {
		if prepared[i], err = dr.mc.prepare(ctx, s); err != nil {
			return nil, e.prepareError(req.Project, err)
		}
	}
	g, r := prepared[0].bounds()
	l1, l2 := sensitivity(g, r)
	rhoEach := dr.budget.Rho / float64(len(sets))
	sigma := dp.ZCDPSigma(l2, rhoEach)
	rel := &MarginalsRelease{
		Project: req.Project, DatasetVersion: e.version, Table: req.Table, Join: dr.mc.joins,
		Epsilon: dr.total.Epsilon, Delta: dr.total.Delta, Rho: dr.budget.Rho, Confidence: Confidence,
		Mechanism: "gaussian (zCDP)",
		Bounding:  MarginalBounding{MaxGroupsContributed: g, MaxRowsPerGroup: r, L1: l1, L2: l2},
	}
	if req.DryRun {
		// Priced from the catalog and the budget: nothing read, nothing charged. The
		// release's σ is this one or, rounded by the noise's calibration, a hair larger.
		rel.DryRun, rel.Attributes = true, dr.mc.attrs
		for _, pm := range prepared {
			rel.Tables = append(rel.Tables, marginalTable(dr.mc.attrs, pm.attrs, nil, sigma, rhoEach))
		}
		rel.BudgetLeft = release.BudgetAmount{Epsilon: dr.st.Left.Epsilon, Delta: dr.st.Left.Delta}
		return rel, nil
	}
	canonical := canonicalMarginals("MARGINALS", joinedName(req.Table, dr.mc.joins), dr.mc.attrs, sets)
	options := fmt.Sprintf("engine=%s&kind="+KindMarginals+"&epsilon=%s&delta=%s&max_groups_contributed=%d&max_rows_per_group=%d",
		engineVersion, strconv.FormatFloat(rel.Epsilon, 'g', -1, 64), strconv.FormatFloat(rel.Delta, 'g', -1, 64), g, r)
	mech, _ := json.Marshal(map[string]any{"mechanism": "gaussian", "tables": len(sets), "rho": dr.budget.Rho, "sigma": sigma, "bounding": rel.Bounding})
	text, _ := json.Marshal(req.Sets)
	// The same request again (project, tables, attribute sets with their bins, budget and
	// bounding, on this dataset version) is answered by the release recorded for it, at no
	// cost: the same noisy counts, so no new information.
	var hit *MarginalsRelease
	hash := ledger.SQLHash(canonical)
	done, err := e.answerOnce(ctx, req.Project+"\x00"+hash+"\x00"+options, func() (bool, error) {
		raw, ok := e.ledger.Cached(req.Project, hash, options, e.version)
		if !ok {
			return false, nil
		}
		cached := new(MarginalsRelease)
		if err := json.Unmarshal(raw, cached); err != nil {
			return false, fmt.Errorf("cached marginals: %w", err)
		}
		cached.Cached = true
		e.budgetLeft(req.Project, &cached.BudgetLeft)
		hit = cached
		return true, nil
	})
	if done == nil {
		return hit, err
	}
	defer done()
	free, err := e.slots.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer free()
	charge, err := e.ledger.Charge(ctx, ledger.ChargeRequest{
		Actor: req.Actor, Project: req.Project, SQL: canonical, Text: "marginals " + joinedName(req.Table, dr.mc.joins) + " " + string(text), Options: options,
		DatasetVersion: e.version, Cost: ledger.Budget{Epsilon: rel.Epsilon, Delta: rel.Delta}, Mechanisms: mech,
	})
	if err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	if e.afterCharge != nil {
		e.afterCharge()
	}
	for i, pm := range prepared {
		counts, err := dr.mc.count(ctx, pm)
		if err != nil {
			e.log.Error("marginal failed", "project", req.Project, "charge", charge.Seq, "class", errorClass(err))
			if i == 0 && errors.Is(err, errNotStarted) {
				if rerr := e.ledger.Refund(ctx, charge, "failed before reading data"); rerr != nil {
					return nil, fmt.Errorf("refund: %w", rerr)
				}
				return nil, ErrInternal
			}
			return nil, ErrExecution
		}
		noisy, used, err := synthesize.Gaussian(counts, sigma)
		if err != nil {
			e.log.Error("noise failed", "project", req.Project, "charge", charge.Seq, "err", err)
			return nil, ErrExecution
		}
		rel.Tables = append(rel.Tables, marginalTable(dr.mc.attrs, pm.attrs, noisy, used, dp.GaussianRho(l2, used)))
	}
	rel.Attributes = dr.mc.attrs
	rel.ReleaseID = releaseID(releaseMarginals, charge.Seq)
	left, err := e.recordRelease(ctx, charge, req.Project, rel)
	if err != nil {
		return nil, err
	}
	if left != nil {
		rel.BudgetLeft = *left
	}
	return rel, nil
}

// z95 is the standard normal's 97.5% quantile.
const z95 = 1.959963984540054

func marginalTable(attrs []*MarginalAttribute, set []int, noisy []float64, sigma, rho float64) MarginalTable {
	t := MarginalTable{Sigma: sigma, Rho: rho, CIHalfWidth: z95 * sigma, Cells: make([]MarginalCell, len(noisy))}
	for _, a := range set {
		t.Attributes = append(t.Attributes, attrs[a].Name)
	}
	half := z95 * sigma
	for c, v := range noisy {
		levels := make([]any, len(set))
		rest := c
		for i := len(set) - 1; i >= 0; i-- {
			at := attrs[set[i]]
			levels[i] = at.Levels[rest%len(at.Levels)]
			rest /= len(at.Levels)
		}
		t.Cells[c] = MarginalCell{Levels: levels, Count: v, CILower: v - half, CIUpper: v + half}
	}
	return t
}

// SynthesizeRequest asks for DP synthetic microdata of one table.
type SynthesizeRequest struct {
	Project, Actor string
	Table          string
	// Join are tables of one row per person joined to Table on pid, as in
	// MarginalsRequest: each synthetic row is a row of Table with its person's attributes.
	Join []string
	// Columns are the attributes (nil: every column of the table and the joined tables,
	// approved for the project, that has a public domain; a joined table's as table.column).
	Columns []string
	// Method is "aim" (default) or "mst".
	Method string
	// Rows is the number of rows to sample (0: the model's noisy estimate of the total).
	Rows           int
	Bins           int
	Epsilon, Delta *float64
	// MaxRowsPerPerson is k of the default bounding, person_rows: each person's at most k
	// rows (1..100; 0: 1), the same in every marginal, with NULL a level of every
	// attribute the catalog does not declare not_null (docs/privacy.md#bounding-for-synthesis-person_rows).
	MaxRowsPerPerson int
	// MaxGroupsContributed and MaxRowsPerGroup, when either is given, select the per_group
	// bounding instead: each person to C cells of R rows in each marginal on its own
	// (1..100 each; 0: 1), NULLs dropped per marginal. The synthesizer is told k = C·R rows
	// per person (docs/privacy.md#sensitivity-of-a-contingency-table).
	MaxGroupsContributed int
	MaxRowsPerGroup      int
}

// Synthetic is a DP synthetic table and its release record: one ledger entry.
type Synthetic struct {
	ReleaseID      string                   `json:"release_id"`
	Project        string                   `json:"project"`
	DatasetVersion string                   `json:"dataset_version"`
	Table          string                   `json:"table"`
	Join           []string                 `json:"join,omitempty"`
	Method         string                   `json:"method"`
	Epsilon        float64                  `json:"epsilon"`
	Delta          float64                  `json:"delta"`
	Rho            float64                  `json:"rho"`
	RhoSpent       float64                  `json:"rho_spent"`
	Rows           int                      `json:"rows"`
	Bounding       MarginalBounding         `json:"bounding"`
	RowsPerPerson  int                      `json:"rows_per_person_bound"`
	Attributes     []*MarginalAttribute     `json:"attributes"`
	Steps          []synthesize.Step        `json:"steps"`
	Utility        synthesize.UtilityReport `json:"utility"`
	// RowsSHA256 is the SHA-256 of the rows as kept for the same request again
	// (Config.ReleaseDir; synthetic_store.go); empty when they were not kept.
	RowsSHA256 string               `json:"rows_sha256,omitempty"`
	BudgetLeft release.BudgetAmount `json:"budget_left"`
	// Cached: the release made for the same request earlier, served at no cost.
	Cached bool `json:"cached,omitempty"`

	data *synthesize.Table
}

// engineCounts is the synthesizer's view of the data: the engine's bounded marginals.
type engineCounts struct {
	ctx      context.Context
	mc       *marginalCounter
	d        synthesize.Domain
	prepared map[string]*preparedMarginal
}

func (c *engineCounts) Marginal(attrs []int) (*synthesize.Factor, error) {
	a := slices.Clone(attrs)
	slices.Sort(a)
	k := fmt.Sprint(a)
	pm := c.prepared[k]
	if pm == nil {
		var err error
		if pm, err = c.mc.prepare(c.ctx, a); err != nil {
			return nil, err
		}
		c.prepared[k] = pm
	}
	counts, err := c.mc.count(c.ctx, pm)
	if err != nil {
		return nil, err
	}
	f, err := synthesize.NewFactor(c.d, a)
	if err != nil {
		return nil, err
	}
	if len(f.Values) != len(counts) {
		return nil, fmt.Errorf("marginal over %v: %d cells for %d", a, len(counts), len(f.Values))
	}
	copy(f.Values, counts)
	return f, nil
}

// Synthesize fits MST or AIM to the table's bounded marginals, measured through the engine,
// and samples rows: charged (ε, δ) once, before any data is read, the synthesizer spending
// at most ρ = CDPRho(ε, δ). The rows, the model and the utility report are post-processing
// of the noisy measurements; the sampler is seeded from crypto/rand. With Config.ReleaseDir
// the rows are kept, and the same request again is answered by the same release (Cached).
func (e *Engine) Synthesize(ctx context.Context, req SynthesizeRequest) (*Synthetic, error) {
	method := strings.ToLower(req.Method)
	if method == "" {
		method = "aim"
	}
	if method != "aim" && method != "mst" {
		return nil, optionsError("method must be aim or mst, got %q", req.Method)
	}
	if req.Rows < 0 || req.Rows > MaxSyntheticRows {
		return nil, optionsError("rows must be from 1 to %d (0: the model's noisy estimate of the table's size)", MaxSyntheticRows)
	}
	maxGroups, maxRows := req.MaxGroupsContributed, req.MaxRowsPerGroup
	perGroup := maxGroups != 0 || maxRows != 0
	if perGroup && req.MaxRowsPerPerson != 0 {
		return nil, optionsError("give either max_rows_per_person (rows of each person, the same in every marginal) or max_groups_contributed and max_rows_per_group (cells of each person in each marginal), not both")
	}
	if maxGroups == 0 {
		maxGroups = 1
	}
	if maxRows == 0 {
		maxRows = 1
	}
	dr, err := e.startDataRelease(req.Project, req.Table, req.Join, req.Epsilon, req.Delta, maxGroups, maxRows, req.Bins)
	if err != nil {
		return nil, err
	}
	cols := req.Columns
	if cols == nil {
		for i, t := range append([]*dataset.CatalogTable{dr.table}, dr.joins...) {
			allowed, ok := dr.st.Allow[t.Name]
			if !ok {
				return nil, &Error{Code: CodeForbidden, Msg: fmt.Sprintf("project %s is not approved for table %s", req.Project, t.Name), Pos: -1}
			}
			for _, c := range t.Columns {
				if len(allowed) > 0 && !slices.Contains(allowed, c.Name) {
					continue
				}
				if _, err := resolveAttribute(e.cat, t, c.Name, max(req.Bins, 2)); err == nil {
					if i > 0 {
						cols = append(cols, t.Name+"."+c.Name)
					} else {
						cols = append(cols, c.Name)
					}
				}
			}
		}
	}
	if len(cols) == 0 || len(cols) > MaxSyntheticColumns {
		return nil, optionsError("synthetic data needs 1 to %d columns with public domains, got %d", MaxSyntheticColumns, len(cols))
	}
	for _, name := range cols {
		if i, err := dr.attribute(e.cat, name, req.Bins); err != nil {
			return nil, err
		} else if i != len(dr.mc.attrs)-1 {
			return nil, optionsError("column %s is named twice", name)
		}
	}
	k := 0
	if !perGroup {
		k = req.MaxRowsPerPerson
		if k == 0 {
			k = 1
		}
		if err := dr.mc.usePersonRows(ctx, k); err != nil {
			return nil, e.prepareError(req.Project, err)
		}
	}
	// Every 1-way marginal is checked and bound, and every level resolved, before the charge.
	counts := &engineCounts{mc: dr.mc, prepared: map[string]*preparedMarginal{}}
	d := synthesize.Domain{}
	var g, r int
	for i, a := range dr.mc.attrs {
		pm, err := dr.mc.prepare(ctx, []int{i})
		if err != nil {
			return nil, e.prepareError(req.Project, err)
		}
		counts.prepared[fmt.Sprint([]int{i})] = pm
		g, r = pm.bounds()
		d.Names = append(d.Names, a.Name)
		d.Sizes = append(d.Sizes, len(a.values))
	}
	counts.d = d
	// MST scores every pair and AIM's default workload is every pair: each must be a
	// marginal the engine enumerates, which is known now, before the charge.
	for a := range d.Sizes {
		for b := a + 1; b < len(d.Sizes); b++ {
			if d.Sizes[a]*d.Sizes[b] > maxGroupsEnumerated {
				return nil, optionsError("the marginal of %s and %s would have %d cells, over the %d the engine enumerates: use fewer bins, or leave one of them out", d.Names[a], d.Names[b], d.Sizes[a]*d.Sizes[b], maxGroupsEnumerated)
			}
		}
	}
	bounding := MarginalBounding{Method: boundingPerGroup, MaxGroupsContributed: g, MaxRowsPerGroup: r}
	bounding.L1, bounding.L2 = sensitivity(g, r)
	if perGroup {
		k = g * r
	} else {
		bounding = personRowsBounding(k)
	}
	out := &Synthetic{
		Project: req.Project, DatasetVersion: e.version, Table: req.Table, Join: dr.mc.joins, Method: method,
		Epsilon: dr.total.Epsilon, Delta: dr.total.Delta, Rho: dr.budget.Rho,
		Bounding: bounding, RowsPerPerson: k, Attributes: dr.mc.attrs,
	}
	var sets [][]int
	for i := range dr.mc.attrs {
		sets = append(sets, []int{i})
	}
	canonical := canonicalMarginals("SYNTHESIZE "+strings.ToUpper(method), joinedName(req.Table, dr.mc.joins), dr.mc.attrs, sets)
	options := fmt.Sprintf("engine=%s&kind="+KindSynthetic+"&method=%s&epsilon=%s&delta=%s&max_groups_contributed=%d&max_rows_per_group=%d&rows=%d",
		engineVersion, method, strconv.FormatFloat(out.Epsilon, 'g', -1, 64), strconv.FormatFloat(out.Delta, 'g', -1, 64), g, r, req.Rows)
	if !perGroup {
		options = fmt.Sprintf("engine=%s&kind="+KindSynthetic+"&method=%s&epsilon=%s&delta=%s&bounding=%s&max_rows_per_person=%d&rows=%d",
			engineVersion, method, strconv.FormatFloat(out.Epsilon, 'g', -1, 64), strconv.FormatFloat(out.Delta, 'g', -1, 64), boundingPersonRows, k, req.Rows)
	}
	mech, _ := json.Marshal(map[string]any{"mechanism": method + " (gaussian measurements, exponential selections; zCDP)", "rho": dr.budget.Rho, "rows_per_person_bound": k, "bounding": out.Bounding})
	// The same request again (project, table and joins, columns with their bins, method,
	// rows, budget and bounding, on this dataset version) is answered by the release made
	// for it, rows and all, at no cost: no new information. Its rows are read back from
	// ReleaseDir; if they were not kept there, or no longer match their digest, the request
	// is a new release, charged (a warning says why).
	var hit *Synthetic
	hash := ledger.SQLHash(canonical)
	done, err := e.answerOnce(ctx, req.Project+"\x00"+hash+"\x00"+options, func() (bool, error) {
		raw, ok := e.ledger.Cached(req.Project, hash, options, e.version)
		if !ok || e.releaseDir == "" {
			return false, nil
		}
		cached := new(Synthetic)
		if err := json.Unmarshal(raw, cached); err != nil {
			return false, fmt.Errorf("cached synthetic release: %w", err)
		}
		tab, err := readSyntheticRows(e.releaseDir, cached, d)
		if err != nil {
			e.log.Warn("the rows of the release made for this request cannot be served again: a new release is made and charged",
				"project", req.Project, "release_id", cached.ReleaseID, "err", err)
			return false, nil
		}
		// The request resolved the same attributes (they are part of its key); this
		// engine's carry the levels the rows index.
		cached.Attributes, cached.data, cached.Cached = dr.mc.attrs, tab, true
		e.budgetLeft(req.Project, &cached.BudgetLeft)
		hit = cached
		return true, nil
	})
	if done == nil {
		return hit, err
	}
	defer done()
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	free, err := e.slots.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer free()
	charge, err := e.ledger.Charge(ctx, ledger.ChargeRequest{
		Actor: req.Actor, Project: req.Project, SQL: canonical, Text: fmt.Sprintf("synthesize %s %s columns=%v rows=%d", joinedName(req.Table, dr.mc.joins), method, cols, req.Rows),
		Options: options, DatasetVersion: e.version, Cost: ledger.Budget{Epsilon: out.Epsilon, Delta: out.Delta}, Mechanisms: mech,
	})
	if err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	counts.ctx = ctx
	if e.afterCharge != nil {
		e.afterCharge()
	}
	opts := synthesize.Options{MaxRowsPerPerson: k}
	var res *synthesize.Result
	if method == "mst" {
		res, err = synthesize.MST(d, counts, dr.budget.Rho, opts)
	} else {
		res, err = synthesize.AIM(d, counts, dr.budget.Rho, opts)
	}
	if err != nil {
		// The cause may come from DuckDB and quote data: only its class is logged.
		e.log.Error("synthesis failed", "project", req.Project, "charge", charge.Seq, "class", errorClass(err))
		return nil, ErrExecution
	}
	n := req.Rows
	if n == 0 {
		n = int(math.Min(math.Max(math.Round(res.Model.Total), 0), MaxSyntheticRows))
	}
	tab, err := res.Sample(n, seed)
	if err != nil {
		e.log.Error("sampling failed", "project", req.Project, "charge", charge.Seq, "err", err)
		return nil, ErrExecution
	}
	util, err := res.Utility(tab)
	if err != nil {
		e.log.Error("utility failed", "project", req.Project, "charge", charge.Seq, "err", err)
		return nil, ErrExecution
	}
	out.RhoSpent, out.Rows, out.Steps, out.Utility, out.data = res.RhoSpent, n, res.Steps, util, tab
	out.ReleaseID = releaseID(releaseSynthetic, charge.Seq)
	if e.releaseDir != "" {
		// Kept before the release is recorded, so that a recorded digest names rows on
		// disk. Not kept, the release stands all the same: only a repeat is charged again.
		if out.RowsSHA256, err = keepSyntheticRows(e.releaseDir, out.ReleaseID, tab); err != nil {
			e.log.Warn("the synthetic rows cannot be kept for the same request again", "project", req.Project, "release_id", out.ReleaseID, "err", err)
		}
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	if err := e.ledger.Release(ctx, charge, raw); err != nil {
		return nil, fmt.Errorf("record release: %w", err)
	}
	e.budgetLeft(req.Project, &out.BudgetLeft)
	return out, nil
}
