package ledger

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Project is a research project as the DPO approved it: why it may query, what it may read and
// how much privacy loss it may spend.
type Project struct {
	ID         string `json:"id"`
	Purpose    string `json:"purpose"`
	LegalBasis string `json:"legal_basis"`
	Approver   string `json:"approver,omitempty"`
	// Allow maps each approved table to its approved columns; an empty slice approves every
	// column of the table. Names are lower case (DuckDB compares identifiers without case).
	Allow map[string][]string `json:"allow"`
	// EpsilonBudget and DeltaBudget are the budget at creation; grants add to it (see
	// ProjectStatus.Total).
	EpsilonBudget float64 `json:"epsilon_budget"`
	DeltaBudget   float64 `json:"delta_budget"`
	// DefaultEpsilon and DefaultDelta are what a query that declares none is charged; zero
	// epsilon means the query must declare one.
	DefaultEpsilon float64 `json:"default_epsilon,omitempty"`
	DefaultDelta   float64 `json:"default_delta,omitempty"`
	// MaxEpsilonPerQuery and MaxDeltaPerQuery cap one query; zero means no cap beyond the budget.
	MaxEpsilonPerQuery float64 `json:"max_epsilon_per_query,omitempty"`
	MaxDeltaPerQuery   float64 `json:"max_delta_per_query,omitempty"`
	// Expires is the instant from which the project may no longer be charged; zero means never.
	Expires time.Time `json:"expires,omitzero"`
	// CreatedAt is set by the ledger: the time of the creating entry.
	CreatedAt time.Time `json:"created_at,omitzero"`
	// OutputPolicy is disclosure control applied to every release after DP (outputpolicy.go).
	OutputPolicy *OutputPolicy `json:"output_policy,omitempty"`
}

// Allows reports whether the project may read column of table (column "" asks about the table
// itself). Names compare without case.
func (p Project) Allows(table, column string) bool {
	cols, ok := p.Allow[strings.ToLower(table)]
	if !ok {
		return false
	}
	return column == "" || len(cols) == 0 || slices.Contains(cols, strings.ToLower(column))
}

// Budget is an (epsilon, delta) pair: a cost, a budget or what is left of one.
type Budget struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

// ProjectStatus is a project with its budget: Total is the creation budget plus grants, Spent
// the charges not refunded, Left = Total - Spent (exact: the sums are fixed point), Queries the
// number of charges not refunded.
type ProjectStatus struct {
	Project
	Total   Budget `json:"total"`
	Spent   Budget `json:"spent"`
	Left    Budget `json:"left"`
	Queries int    `json:"queries"`
}

// FieldError is a rejected input; Field names it as in the JSON form of Project or
// ChargeRequest (epsilon_budget, allow, ...).
type FieldError struct {
	Field   string
	Problem string
}

// Error returns "field: problem".
func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

var (
	projectIDPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	identifierPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,127}$`)
)

// definitionOf converts and normalises p; the rules that also hold on replay are in
// checkDefinition.
func definitionOf(p Project) (*definition, error) {
	d := &definition{Purpose: strings.TrimSpace(p.Purpose), LegalBasis: strings.TrimSpace(p.LegalBasis), Approver: strings.TrimSpace(p.Approver)}
	var err error
	conv := func(field string, x float64, f func(float64, bool) error) {
		if err == nil {
			if e := f(x, false); e != nil {
				err = &FieldError{field, e.Error()}
			}
		}
	}
	eps := func(dst *epsUnits) func(float64, bool) error {
		return func(x float64, up bool) (e error) { *dst, e = toEps(x, up); return e }
	}
	del := func(dst *deltaUnits) func(float64, bool) error {
		return func(x float64, up bool) (e error) { *dst, e = toDelta(x, up); return e }
	}
	conv("epsilon_budget", p.EpsilonBudget, eps(&d.EpsilonBudget))
	conv("delta_budget", p.DeltaBudget, del(&d.DeltaBudget))
	conv("default_epsilon", p.DefaultEpsilon, eps(&d.DefaultEpsilon))
	conv("default_delta", p.DefaultDelta, del(&d.DefaultDelta))
	conv("max_epsilon_per_query", p.MaxEpsilonPerQuery, eps(&d.MaxEpsilonPerQuery))
	conv("max_delta_per_query", p.MaxDeltaPerQuery, del(&d.MaxDeltaPerQuery))
	if err != nil {
		return nil, err
	}
	if !p.Expires.IsZero() {
		t := p.Expires.UTC()
		d.Expires = &t
	}
	if err := policyOf(p, d); err != nil {
		return nil, err
	}
	d.Allow = make(map[string][]string, len(p.Allow))
	for table, cols := range p.Allow {
		table = strings.ToLower(strings.TrimSpace(table))
		norm := make([]string, 0, len(cols))
		for _, c := range cols {
			norm = append(norm, strings.ToLower(strings.TrimSpace(c)))
		}
		slices.Sort(norm)
		norm = slices.Compact(norm)
		if prev, ok := d.Allow[table]; ok { // the same table twice after folding case
			if len(prev) == 0 || len(norm) == 0 {
				norm = []string{}
			} else {
				norm = slices.Compact(slices.Sorted(slices.Values(append(prev, norm...))))
			}
		}
		d.Allow[table] = norm
	}
	return d, nil
}

// checkDefinition holds every rule of a project definition, at creation and on replay.
func checkDefinition(id string, d *definition, at time.Time) error {
	switch {
	case !projectIDPattern.MatchString(id):
		return &FieldError{"id", fmt.Sprintf("%q must match %s", id, projectIDPattern)}
	case d.Purpose == "" || !utf8.ValidString(d.Purpose):
		return &FieldError{"purpose", "required"}
	case d.LegalBasis == "" || !utf8.ValidString(d.LegalBasis):
		return &FieldError{"legal_basis", "required"}
	case len(d.Allow) == 0:
		return &FieldError{"allow", "at least one table is required"}
	case d.EpsilonBudget <= 0:
		return &FieldError{"epsilon_budget", "must be > 0"}
	case d.MaxEpsilonPerQuery > d.EpsilonBudget:
		return &FieldError{"max_epsilon_per_query", fmt.Sprintf("%s exceeds epsilon_budget %s", d.MaxEpsilonPerQuery, d.EpsilonBudget)}
	case d.MaxDeltaPerQuery > d.DeltaBudget:
		return &FieldError{"max_delta_per_query", fmt.Sprintf("%s exceeds delta_budget %s", d.MaxDeltaPerQuery, d.DeltaBudget)}
	case d.DefaultEpsilon > d.EpsilonBudget || (d.MaxEpsilonPerQuery > 0 && d.DefaultEpsilon > d.MaxEpsilonPerQuery):
		return &FieldError{"default_epsilon", fmt.Sprintf("%s exceeds the budget or the per-query cap", d.DefaultEpsilon)}
	case d.DefaultDelta > d.DeltaBudget || (d.MaxDeltaPerQuery > 0 && d.DefaultDelta > d.MaxDeltaPerQuery):
		return &FieldError{"default_delta", fmt.Sprintf("%s exceeds the budget or the per-query cap", d.DefaultDelta)}
	case d.Expires != nil && !d.Expires.After(at):
		return &FieldError{"expires", fmt.Sprintf("%s is not in the future", d.Expires.Format(time.RFC3339))}
	}
	if err := checkOutputPolicy(d.OutputPolicy); err != nil {
		return err
	}
	// The budgets themselves are range-checked when converted: epsilon at most 1e6, delta below 1.
	if d.EpsilonBudget > maxEpsilonUnits {
		return &FieldError{"epsilon_budget", "must be at most 1000000"}
	}
	if d.DeltaBudget < 0 || d.DeltaBudget >= oneDeltaUnits {
		return &FieldError{"delta_budget", "must be in [0, 1)"}
	}
	for _, table := range slices.Sorted(maps.Keys(d.Allow)) {
		if !identifierPattern.MatchString(table) {
			return &FieldError{"allow", fmt.Sprintf("table %q is not a plain identifier", table)}
		}
		cols := d.Allow[table]
		if cols == nil {
			return &FieldError{"allow", fmt.Sprintf("table %q has no column list", table)}
		}
		for i, c := range cols {
			if !identifierPattern.MatchString(c) {
				return &FieldError{"allow", fmt.Sprintf("column %q of %s is not a plain identifier", c, table)}
			}
			if i > 0 && cols[i-1] >= c {
				return &FieldError{"allow", fmt.Sprintf("columns of %s are not sorted and unique", table)}
			}
		}
	}
	return nil
}

func (d *definition) project(id string, created time.Time) Project {
	p := Project{
		ID: id, Purpose: d.Purpose, LegalBasis: d.LegalBasis, Approver: d.Approver,
		Allow:              make(map[string][]string, len(d.Allow)),
		EpsilonBudget:      d.EpsilonBudget.float(),
		DeltaBudget:        d.DeltaBudget.float(),
		DefaultEpsilon:     d.DefaultEpsilon.float(),
		DefaultDelta:       d.DefaultDelta.float(),
		MaxEpsilonPerQuery: d.MaxEpsilonPerQuery.float(),
		MaxDeltaPerQuery:   d.MaxDeltaPerQuery.float(),
		CreatedAt:          created,
	}
	for t, cols := range d.Allow {
		p.Allow[t] = slices.Clone(cols)
	}
	if d.Expires != nil {
		p.Expires = *d.Expires
	}
	d.policyInto(&p)
	return p
}

// CreateProject appends a project. It fails with ErrProjectExists if the ID is taken and with a
// *FieldError naming the field for an invalid definition: budgets finite, epsilon > 0,
// 0 <= delta < 1, defaults and caps within the budget, expiry in the future, at least one table,
// an ID matching ^[a-z0-9][a-z0-9_-]{0,63}$. CreatedAt is set to the entry's time.
func (l *Ledger) CreateProject(ctx context.Context, actor string, p Project) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d, err := definitionOf(p)
	if err == nil {
		_, err = l.append(&record{Kind: KindProject, Actor: actor, Project: p.ID, Definition: d})
	}
	if err != nil {
		return fmt.Errorf("ledger: create project %s: %w", p.ID, err)
	}
	return nil
}

// Grant adds budget to a project (either part may be zero, not both). The total delta must
// stay below 1.
func (l *Ledger) Grant(ctx context.Context, actor, project string, add Budget, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := grantRecord(actor, project, add, reason)
	if err == nil {
		_, err = l.append(r)
	}
	if err != nil {
		return fmt.Errorf("ledger: grant to project %s: %w", project, err)
	}
	return nil
}

// grantRecord builds a grant entry (both ledgers).
func grantRecord(actor, project string, add Budget, reason string) (*record, error) {
	r := &record{Kind: KindGrant, Actor: actor, Project: project, Reason: strings.TrimSpace(reason)}
	var err error
	if r.Epsilon, err = toEps(add.Epsilon, false); err != nil {
		err = &FieldError{"epsilon", err.Error()}
	} else if r.Delta, err = toDelta(add.Delta, false); err != nil {
		err = &FieldError{"delta", err.Error()}
	}
	return r, err
}

// Project returns one project's status, or ErrUnknownProject.
func (l *Ledger) Project(id string) (ProjectStatus, error) {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	ps, ok := l.st.projects[id]
	if !ok {
		return ProjectStatus{}, fmt.Errorf("ledger: project %q: %w", id, ErrUnknownProject)
	}
	return ps.status(), nil
}

// Active returns nil if the project exists and has not expired by the ledger's clock (the
// time the next entry would get), else ErrUnknownProject or ErrProjectExpired: the same
// rule as Charge's. Answers that need no charge (dry runs, cached releases) ask it, so an
// expired project gets nothing at all.
func (l *Ledger) Active(id string) error {
	now := l.opts.Now().UTC()
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.st.active(id, now)
}

// Projects returns every project's status, ordered by ID.
func (l *Ledger) Projects() []ProjectStatus {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.st.statuses()
}
