package ledger

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// state is what the ledger knows, rebuilt by replaying every entry. Writers and Verify share
// check and apply, so a rule enforced when writing is the rule checked on replay.
type state struct {
	seq      uint64
	head     [32]byte
	size     int64     // bytes of complete frames
	last     time.Time // time of the last entry: times never go back along the chain
	projects map[string]*projectState
	requests map[string]*requestState // each project ID's latest request (permit.go)
	charges  map[uint64]*chargeState
	cache    map[cacheKey]json.RawMessage
	entries  []Entry
	// lean: a writer's look-ahead state (Ledger.spec), which keeps what check needs and
	// neither the entries nor the release cache.
	lean bool
}

type projectState struct {
	id      string
	def     *definition
	created time.Time
	total   amount
	spent   amount
	queries int
	// suspended by a DPO (permit.go): since suspendedAt, for suspendReason.
	suspended     bool
	suspendedAt   time.Time
	suspendReason string
}

type chargeState struct {
	project string
	cost    amount
	key     cacheKey
	actor   string
	settled string // "", KindRefund or KindRelease
}

type cacheKey struct{ project, sqlHash, options, datasetVersion string }

func newState() *state {
	return &state{
		projects: make(map[string]*projectState),
		requests: make(map[string]*requestState),
		charges:  make(map[uint64]*chargeState),
		cache:    make(map[cacheKey]json.RawMessage),
	}
}

// lookahead returns a lean copy of st for a writer to check and apply entries against before
// they are durable. Settled charges never change again and are shared.
func (st *state) lookahead() *state {
	la := &state{
		seq: st.seq, head: st.head, size: st.size, last: st.last, lean: true,
		projects: make(map[string]*projectState, len(st.projects)),
		requests: maps.Clone(st.requests), // applyPermitKind replaces, never changes, a value
		charges:  make(map[uint64]*chargeState, len(st.charges)),
	}
	for id, ps := range st.projects {
		c := *ps
		la.projects[id] = &c
	}
	for seq, cs := range st.charges {
		if cs.settled == "" {
			c := *cs
			cs = &c
		}
		la.charges[seq] = cs
	}
	return la
}

func (ps *projectState) status() ProjectStatus {
	return ProjectStatus{
		Project:   ps.def.project(ps.id, ps.created),
		Total:     ps.total.budget(),
		Spent:     ps.spent.budget(),
		Left:      ps.total.sub(ps.spent).budget(),
		Queries:   ps.queries,
		Suspended: ps.suspended, SuspendedAt: ps.suspendedAt, SuspendReason: ps.suspendReason,
	}
}

func (st *state) statuses() []ProjectStatus {
	out := make([]ProjectStatus, 0, len(st.projects))
	for _, id := range slices.Sorted(maps.Keys(st.projects)) {
		out = append(out, st.projects[id].status())
	}
	return out
}

// check reports whether r may follow the entries applied so far. Its errors are the ones
// callers act on (ErrBudgetExhausted, *FieldError, ...); on replay any error is corruption.
// active is Active's rule on this state at the clock reading now: nil, or
// ErrUnknownProject or ErrProjectExpired (by the time the next entry would get).
func (st *state) active(id string, now time.Time) error {
	ps, ok := st.projects[id]
	if !ok {
		return fmt.Errorf("ledger: project %q: %w", id, ErrUnknownProject)
	}
	if now.Before(st.last) {
		now = st.last
	}
	if err := ps.inactive(now); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// entriesAfter is Entries on this state.
func (st *state) entriesAfter(project string, sinceSeq uint64) []Entry {
	var out []Entry
	for _, e := range st.entries[min(sinceSeq, uint64(len(st.entries))):] {
		if project == "" || e.Project == project {
			out = append(out, e)
		}
	}
	return out
}

// cached is Cached on this state: a copy of the release recorded for the key.
func (st *state) cached(project, sqlHash, options, datasetVersion string) (json.RawMessage, bool) {
	r, ok := st.cache[cacheKey{project, sqlHash, options, datasetVersion}]
	return bytes.Clone(r), ok
}

func (st *state) check(r *record) error {
	if r.Seq != st.seq+1 {
		return fmt.Errorf("sequence number %d, expected %d", r.Seq, st.seq+1)
	}
	if r.Prev != hex.EncodeToString(st.head[:]) {
		return errors.New("prev does not match the hash of the previous entry")
	}
	if r.Time.IsZero() {
		return &FieldError{"time", "required"}
	}
	if r.Time.Before(st.last) {
		return fmt.Errorf("time %s is before the previous entry's %s", r.Time.Format(time.RFC3339Nano), st.last.Format(time.RFC3339Nano))
	}
	if r.Kind != KindRecovery && (strings.TrimSpace(r.Actor) == "" || !utf8.ValidString(r.Actor)) {
		return &FieldError{"actor", "required"}
	}
	switch r.Kind {
	case KindProject:
		if err := st.checkNewProject(r); err != nil {
			return err
		}
		return checkDefinition(r.Project, r.Definition, r.Time)

	case KindGrant:
		ps, err := st.project(r.Project)
		if err != nil {
			return err
		}
		if r.Epsilon == 0 && r.Delta == 0 {
			return &FieldError{"epsilon", "a grant adds epsilon, delta or both"}
		}
		total := ps.total.add(r.amount())
		if total.eps > maxEpsilonUnits {
			return &FieldError{"epsilon", fmt.Sprintf("the total would be %s, above the 1000000 limit", total.eps)}
		}
		if total.delta >= oneDeltaUnits {
			return &FieldError{"delta", fmt.Sprintf("the total would be %s; delta must stay below 1", total.delta)}
		}
		return nil

	case KindCharge:
		ps, err := st.project(r.Project)
		if err != nil {
			return err
		}
		d := ps.def
		if err := ps.inactive(r.Time); err != nil {
			return err
		}
		switch {
		case r.Epsilon <= 0:
			return &FieldError{"epsilon", "a query costs epsilon > 0"}
		case r.SQL == "" || !utf8.ValidString(r.SQL):
			return &FieldError{"sql", "required, as valid UTF-8"}
		case r.SQLHash != SQLHash(r.SQL):
			return &FieldError{"sql_hash", "does not match the SQL text"}
		case !utf8.ValidString(r.Text):
			return &FieldError{"text", "must be valid UTF-8"}
		case r.DatasetVersion == "":
			return &FieldError{"dataset_version", "required"}
		case r.Mechanisms != nil && !json.Valid(r.Mechanisms):
			return &FieldError{"mechanisms", "not valid JSON"}
		}
		if d.MaxEpsilonPerQuery > 0 && r.Epsilon > d.MaxEpsilonPerQuery {
			return fmt.Errorf("%w: epsilon %s is above the cap of %s", ErrOverCap, r.Epsilon, d.MaxEpsilonPerQuery)
		}
		if d.MaxDeltaPerQuery > 0 && r.Delta > d.MaxDeltaPerQuery {
			return fmt.Errorf("%w: delta %s is above the cap of %s", ErrOverCap, r.Delta, d.MaxDeltaPerQuery)
		}
		if left := ps.total.sub(ps.spent); !left.covers(r.amount()) {
			return newBudgetError(r.Project, r.amount(), ps.total, ps.spent)
		}
		return nil

	case KindRefund, KindRelease:
		c, ok := st.charges[r.Charge]
		if !ok {
			return fmt.Errorf("entry %d is not a charge", r.Charge)
		}
		if c.project != r.Project {
			return fmt.Errorf("charge %d belongs to project %s, not %s", r.Charge, c.project, r.Project)
		}
		if c.settled != "" {
			return fmt.Errorf("%w: charge %d already has a %s", ErrAlreadySettled, r.Charge, c.settled)
		}
		if r.Kind == KindRefund {
			if r.amount() != c.cost {
				return fmt.Errorf("refund of %s does not match charge %d of %s", r.amount(), r.Charge, c.cost)
			}
			return nil
		}
		if len(r.Release) == 0 || !json.Valid(r.Release) {
			return &FieldError{"release", "required, as JSON"}
		}
		if r.ResultHash != resultHash(r.Release) {
			return &FieldError{"result_hash", "does not match the release"}
		}
		return nil

	case KindDummy:
		return st.checkDummy(r)

	case KindRecovery:
		if r.TruncatedBytes <= 0 {
			return &FieldError{"truncated_bytes", "must be > 0"}
		}
		return nil
	}
	if isPermitKind(r.Kind) {
		return st.checkPermitKind(r)
	}
	return fmt.Errorf("unknown entry kind %q", r.Kind)
}

func (st *state) project(id string) (*projectState, error) {
	ps, ok := st.projects[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownProject, id)
	}
	return ps, nil
}

// apply adds a checked record, whose frame ends at end and whose hash is h.
func (st *state) apply(r *record, h [32]byte, end int64) {
	st.seq, st.head, st.size, st.last = r.Seq, h, end, r.Time
	switch r.Kind {
	case KindProject:
		st.projects[r.Project] = &projectState{
			id: r.Project, def: r.Definition, created: r.Time,
			total: amount{r.Definition.EpsilonBudget, r.Definition.DeltaBudget},
		}
	case KindGrant:
		ps := st.projects[r.Project]
		ps.total = ps.total.add(r.amount())
	case KindCharge:
		ps := st.projects[r.Project]
		ps.spent = ps.spent.add(r.amount())
		ps.queries++
		st.charges[r.Seq] = &chargeState{
			project: r.Project, cost: r.amount(),
			key:   cacheKey{r.Project, r.SQLHash, r.Options, r.DatasetVersion},
			actor: r.Actor,
		}
	case KindRefund:
		c := st.charges[r.Charge]
		c.settled = KindRefund
		ps := st.projects[r.Project]
		ps.spent = ps.spent.sub(c.cost)
		ps.queries--
	case KindRelease:
		c := st.charges[r.Charge]
		c.settled = KindRelease
		if _, ok := st.cache[c.key]; !ok && !st.lean { // the first release stays: a cached release is the same release
			st.cache[c.key] = r.Release
		}
	default:
		st.applyPermitKind(r)
	}
	if !st.lean {
		st.entries = append(st.entries, entryOf(r, h))
	}
}
