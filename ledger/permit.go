package ledger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Data permits (docs/governance.md). A project is created from a data permit, issued by a
// health data access body to a holder, for a purpose under a legal basis, over datasets
// and columns, for a validity period and a total budget. A researcher may request one
// (KindRequest); a DPO approves it, possibly amending its columns, budgets and validity
// (KindApprove: the project exists from then on), or rejects it with a reason
// (KindReject). A DPO may suspend a project (KindSuspend, with a reason) and resume it
// (KindResume). Each step is an entry of the hash chain, checked on append and on replay
// by the same rules, on the file ledger and the PostgreSQL ledger alike.
const (
	KindRequest = "request" // a researcher asked for a project under a permit
	KindApprove = "approve" // a DPO approved a request, as amended: the project exists
	KindReject  = "reject"  // a DPO rejected a request, with a reason
	KindSuspend = "suspend" // a DPO suspended a project: nothing is charged until resumed
	KindResume  = "resume"  // a DPO resumed a suspended project
)

// Request states, as PermitRequest.Status spells them.
const (
	RequestPending  = "pending"
	RequestApproved = "approved"
	RequestRejected = "rejected"
)

var (
	// ErrProjectSuspended: a DPO suspended the project; nothing is charged until resumed.
	ErrProjectSuspended = errors.New("project suspended")
	// ErrProjectNotYetValid: the project's permit is not valid yet (its valid_from is ahead).
	ErrProjectNotYetValid = errors.New("project not yet valid")
	// ErrNoPendingRequest: approve or reject of a project no pending request names.
	ErrNoPendingRequest = errors.New("no pending request")
	// ErrRequestPending: a request or project under an ID a pending request already holds.
	ErrRequestPending = errors.New("a request for this project is pending")
)

// InactiveError says why a project cannot be charged now: it expired (ErrProjectExpired,
// At is the expiry), it is suspended (ErrProjectSuspended, At is when, Reason the DPO's),
// or it is not valid yet (ErrProjectNotYetValid, At is valid_from). It wraps the sentinel.
// Its text names only the project, the instant and the DPO's reason, which the project's
// members may read.
type InactiveError struct {
	Project string
	Cause   error
	At      time.Time
	Reason  string
}

// Error names the project, what stops it and since or until when.
func (e *InactiveError) Error() string {
	at := e.At.UTC().Format(time.RFC3339)
	switch e.Cause {
	case ErrProjectSuspended:
		return fmt.Sprintf("project %s suspended on %s: %s", e.Project, at, e.Reason)
	case ErrProjectNotYetValid:
		return fmt.Sprintf("project %s not yet valid: its permit is valid from %s", e.Project, at)
	}
	return fmt.Sprintf("project %s expired on %s", e.Project, at)
}

// Unwrap makes errors.Is(err, ErrProjectExpired) (and the others) hold.
func (e *InactiveError) Unwrap() error { return e.Cause }

// permitDef is the permit a definition was made from.
type permitDef struct {
	ID          string `json:"id"`
	IssuingBody string `json:"issuing_body"`
	Holder      string `json:"holder"`
}

func permitOf(p Project, d *definition) {
	id, body, holder := strings.TrimSpace(p.PermitID), strings.TrimSpace(p.IssuingBody), strings.TrimSpace(p.Holder)
	if id != "" || body != "" || holder != "" {
		d.Permit = &permitDef{ID: id, IssuingBody: body, Holder: holder}
	}
	if !p.ValidFrom.IsZero() {
		t := p.ValidFrom.UTC()
		d.ValidFrom = &t
	}
}

func (d *definition) permitInto(p *Project) {
	if d.Permit != nil {
		p.PermitID, p.IssuingBody, p.Holder = d.Permit.ID, d.Permit.IssuingBody, d.Permit.Holder
	}
	if d.ValidFrom != nil {
		p.ValidFrom = *d.ValidFrom
	}
}

// checkPermit holds the permit's rules: all three of ID, issuing body and holder, as
// valid text, and a validity that starts before it ends.
func checkPermit(d *definition) error {
	if pm := d.Permit; pm != nil {
		for _, f := range []struct{ name, v string }{{"permit_id", pm.ID}, {"issuing_body", pm.IssuingBody}, {"holder", pm.Holder}} {
			if f.v == "" || !utf8.ValidString(f.v) || len(f.v) > 256 {
				return &FieldError{f.name, "required with a permit, as text of at most 256 bytes"}
			}
		}
	}
	if d.ValidFrom != nil && d.Expires != nil && !d.ValidFrom.Before(*d.Expires) {
		return &FieldError{"valid_from", fmt.Sprintf("%s is not before the expiry %s", d.ValidFrom.Format(time.RFC3339), d.Expires.Format(time.RFC3339))}
	}
	return nil
}

// requestState is a request as the ledger knows it: the latest under its project ID.
type requestState struct {
	id, by, status, decidedBy, reason string
	def                               *definition
	seq                               uint64
	at, decidedAt                     time.Time
}

// PermitRequest is a request for a project: the project as requested (CreatedAt is the
// request's time), who asked and when, and what became of it.
type PermitRequest struct {
	Project
	Seq         uint64    `json:"seq"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	// Status is pending, approved or rejected; DecidedBy, DecidedAt and Reason say by
	// whom, when and (for a rejection, or an approval that gave one) why.
	Status    string    `json:"status"`
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Reason    string    `json:"reason,omitempty"`
}

func (rs *requestState) view() PermitRequest {
	return PermitRequest{
		Project: rs.def.project(rs.id, rs.at), Seq: rs.seq, RequestedBy: rs.by, RequestedAt: rs.at,
		Status: rs.status, DecidedBy: rs.decidedBy, DecidedAt: rs.decidedAt, Reason: rs.reason,
	}
}

// requestList is Requests on this state: every project's latest request, pending first,
// then newest first.
func (st *state) requestList() []PermitRequest {
	out := make([]PermitRequest, 0, len(st.requests))
	for _, id := range slices.Sorted(maps.Keys(st.requests)) {
		out = append(out, st.requests[id].view())
	}
	slices.SortStableFunc(out, func(a, b PermitRequest) int {
		if (a.Status == RequestPending) != (b.Status == RequestPending) {
			if a.Status == RequestPending {
				return -1
			}
			return 1
		}
		return int(b.Seq) - int(a.Seq)
	})
	return out
}

// inactive is the rule of Active and of every charge: nil, or an *InactiveError for a
// project expired, suspended or not yet valid at t.
func (ps *projectState) inactive(t time.Time) error {
	d := ps.def
	switch {
	case d.Expires != nil && !t.Before(*d.Expires):
		return &InactiveError{Project: ps.id, Cause: ErrProjectExpired, At: *d.Expires}
	case ps.suspended:
		return &InactiveError{Project: ps.id, Cause: ErrProjectSuspended, At: ps.suspendedAt, Reason: ps.suspendReason}
	case d.ValidFrom != nil && t.Before(*d.ValidFrom):
		return &InactiveError{Project: ps.id, Cause: ErrProjectNotYetValid, At: *d.ValidFrom}
	}
	return nil
}

// checkPermitKind is state.check for the permit entries.
// checkNewProject is what a project's creation and a request for one both need: no
// project and no pending request of that name, and a definition.
func (st *state) checkNewProject(r *record) error {
	if _, ok := st.projects[r.Project]; ok {
		return ErrProjectExists
	}
	if rq, ok := st.requests[r.Project]; ok && rq.status == RequestPending {
		return ErrRequestPending
	}
	if r.Definition == nil {
		return &FieldError{"definition", "required"}
	}
	return nil
}

func (st *state) checkPermitKind(r *record) error {
	if !utf8.ValidString(r.Reason) {
		return &FieldError{"reason", "must be valid UTF-8"}
	}
	if r.Epsilon != 0 || r.Delta != 0 || r.Charge != 0 || r.SQL != "" || r.Release != nil {
		return fmt.Errorf("a %s entry carries a definition and a reason only", r.Kind)
	}
	pending := func() (*requestState, error) {
		rq, ok := st.requests[r.Project]
		if !ok || rq.status != RequestPending {
			return nil, fmt.Errorf("%w for project %q", ErrNoPendingRequest, r.Project)
		}
		return rq, nil
	}
	switch r.Kind {
	case KindRequest:
		if err := st.checkNewProject(r); err != nil {
			return err
		}
		if r.Definition.Permit == nil {
			return &FieldError{"permit_id", "a request names the data permit it is made under"}
		}
		return checkDefinition(r.Project, r.Definition, r.Time)

	case KindApprove:
		rq, err := pending()
		if err != nil {
			return err
		}
		if r.Definition == nil {
			return &FieldError{"definition", "required"}
		}
		if err := checkDefinition(r.Project, r.Definition, r.Time); err != nil {
			return err
		}
		// The DPO amends what the project may read, spend and for how long; the permit,
		// its purpose and its legal basis are what was asked for.
		a, b := r.Definition, rq.def
		switch {
		case a.Permit == nil || *a.Permit != *b.Permit:
			return &FieldError{"permit_id", "an approval keeps the request's permit (ID, issuing body, holder)"}
		case a.Purpose != b.Purpose:
			return &FieldError{"purpose", "an approval keeps the request's purpose"}
		case a.LegalBasis != b.LegalBasis:
			return &FieldError{"legal_basis", "an approval keeps the request's legal basis"}
		}
		return nil

	case KindReject:
		if _, err := pending(); err != nil {
			return err
		}
		if r.Definition != nil {
			return &FieldError{"definition", "a rejection carries none"}
		}
		if strings.TrimSpace(r.Reason) == "" {
			return &FieldError{"reason", "a rejection gives its reason"}
		}
		return nil

	case KindSuspend, KindResume:
		ps, err := st.project(r.Project)
		if err != nil {
			return err
		}
		if r.Definition != nil {
			return &FieldError{"definition", fmt.Sprintf("a %s entry carries none", r.Kind)}
		}
		if r.Kind == KindSuspend {
			if ps.suspended {
				return &FieldError{"project", fmt.Sprintf("project %s is already suspended", r.Project)}
			}
			if strings.TrimSpace(r.Reason) == "" {
				return &FieldError{"reason", "a suspension gives its reason"}
			}
			return nil
		}
		if !ps.suspended {
			return &FieldError{"project", fmt.Sprintf("project %s is not suspended", r.Project)}
		}
		return nil
	}
	return fmt.Errorf("unknown entry kind %q", r.Kind)
}

// applyPermitKind is state.apply for the permit entries.
func (st *state) applyPermitKind(r *record) {
	switch r.Kind {
	case KindRequest:
		st.requests[r.Project] = &requestState{id: r.Project, by: r.Actor, status: RequestPending, def: r.Definition, seq: r.Seq, at: r.Time}
	case KindApprove, KindReject:
		rq := *st.requests[r.Project] // copied: a writer's look-ahead shares the map's values
		rq.decidedBy, rq.decidedAt, rq.reason = r.Actor, r.Time, r.Reason
		rq.status = RequestRejected
		if r.Kind == KindApprove {
			rq.status = RequestApproved
			st.projects[r.Project] = &projectState{
				id: r.Project, def: r.Definition, created: r.Time,
				total: amount{r.Definition.EpsilonBudget, r.Definition.DeltaBudget},
			}
		}
		st.requests[r.Project] = &rq
	case KindSuspend:
		ps := st.projects[r.Project]
		ps.suspended, ps.suspendedAt, ps.suspendReason = true, r.Time, r.Reason
	case KindResume:
		ps := st.projects[r.Project]
		ps.suspended, ps.suspendedAt, ps.suspendReason = false, time.Time{}, ""
	}
}

func isPermitKind(kind string) bool {
	switch kind {
	case KindRequest, KindApprove, KindReject, KindSuspend, KindResume:
		return true
	}
	return false
}

// permitRecord builds a permit entry (both ledgers). def is the project for a request or
// an approval, nil otherwise.
func permitRecord(kind, actor, project string, def *Project, reason string) (*record, error) {
	r := &record{Kind: kind, Actor: strings.TrimSpace(actor), Project: project, Reason: strings.TrimSpace(reason)}
	if def != nil {
		if def.ID != project {
			return nil, &FieldError{"id", fmt.Sprintf("the definition is of project %q, not %q", def.ID, project)}
		}
		d, err := definitionOf(*def)
		if err != nil {
			return nil, err
		}
		r.Definition = d
	}
	return r, nil
}

var permitVerbs = map[string]string{
	KindRequest: "request project", KindApprove: "approve project", KindReject: "reject the request for project",
	KindSuspend: "suspend project", KindResume: "resume project",
}

func (l *Ledger) permitAppend(ctx context.Context, kind, actor, project string, def *Project, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := permitRecord(kind, actor, project, def, reason)
	if err == nil {
		_, err = l.append(r)
	}
	if err != nil {
		return fmt.Errorf("ledger: %s %s: %w", permitVerbs[kind], project, err)
	}
	return nil
}

func (l *PG) permitAppend(ctx context.Context, kind, actor, project string, def *Project, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := permitRecord(kind, actor, project, def, reason)
	if err == nil {
		_, err = l.append(ctx, func(*state) (*record, error) { return r, nil })
	}
	if err != nil {
		return fmt.Errorf("ledger: %s %s: %w", permitVerbs[kind], project, err)
	}
	return nil
}

// RequestProject records a researcher's request for project p under a data permit (its
// PermitID, IssuingBody and Holder are required). It fails with ErrProjectExists,
// ErrRequestPending or a *FieldError as CreateProject does.
func (l *Ledger) RequestProject(ctx context.Context, actor string, p Project) error {
	return l.permitAppend(ctx, KindRequest, actor, p.ID, &p, "")
}

// ApproveRequest creates the project of a pending request as p: the request's definition,
// possibly amended (tables and columns, budgets, per-query defaults and caps, validity);
// its permit, purpose and legal basis must be the request's. ErrNoPendingRequest if none.
func (l *Ledger) ApproveRequest(ctx context.Context, actor string, p Project, reason string) error {
	return l.permitAppend(ctx, KindApprove, actor, p.ID, &p, reason)
}

// RejectRequest closes a pending request without a project; reason is required.
func (l *Ledger) RejectRequest(ctx context.Context, actor, project, reason string) error {
	return l.permitAppend(ctx, KindReject, actor, project, nil, reason)
}

// Suspend stops a project from being charged (Active and Charge refuse it with an
// *InactiveError wrapping ErrProjectSuspended) until Resume; reason is required.
func (l *Ledger) Suspend(ctx context.Context, actor, project, reason string) error {
	return l.permitAppend(ctx, KindSuspend, actor, project, nil, reason)
}

// Resume lifts a suspension.
func (l *Ledger) Resume(ctx context.Context, actor, project, reason string) error {
	return l.permitAppend(ctx, KindResume, actor, project, nil, reason)
}

// Requests returns every project's latest request: pending first, then newest first.
func (l *Ledger) Requests() []PermitRequest {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.st.requestList()
}

// RequestProject is (*Ledger).RequestProject on the PostgreSQL ledger.
func (l *PG) RequestProject(ctx context.Context, actor string, p Project) error {
	return l.permitAppend(ctx, KindRequest, actor, p.ID, &p, "")
}

// ApproveRequest is (*Ledger).ApproveRequest on the PostgreSQL ledger.
func (l *PG) ApproveRequest(ctx context.Context, actor string, p Project, reason string) error {
	return l.permitAppend(ctx, KindApprove, actor, p.ID, &p, reason)
}

// RejectRequest is (*Ledger).RejectRequest on the PostgreSQL ledger.
func (l *PG) RejectRequest(ctx context.Context, actor, project, reason string) error {
	return l.permitAppend(ctx, KindReject, actor, project, nil, reason)
}

// Suspend is (*Ledger).Suspend on the PostgreSQL ledger.
func (l *PG) Suspend(ctx context.Context, actor, project, reason string) error {
	return l.permitAppend(ctx, KindSuspend, actor, project, nil, reason)
}

// Resume is (*Ledger).Resume on the PostgreSQL ledger.
func (l *PG) Resume(ctx context.Context, actor, project, reason string) error {
	return l.permitAppend(ctx, KindResume, actor, project, nil, reason)
}

// Requests is (*Ledger).Requests on the PostgreSQL ledger, after reading what other
// replicas appended.
func (l *PG) Requests() []PermitRequest {
	l.refresh()
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.st.requestList()
}
