package notebooksapi

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/velo-fse/velo/ledger"
)

// The data permit's workflow through the API (docs/governance.md): a researcher or an
// official requests a project under a data permit; the DPO approves it (possibly
// amending what it may read, spend and for how long), or rejects it with a reason; the
// DPO suspends and resumes projects. Every step is a ledger entry.

// permitLedger is what the workflow needs of the ledger (ledger.Store has it).
type permitLedger interface {
	RequestProject(ctx context.Context, actor string, p ledger.Project) error
	ApproveRequest(ctx context.Context, actor string, p ledger.Project, reason string) error
	RejectRequest(ctx context.Context, actor, project, reason string) error
	Suspend(ctx context.Context, actor, project, reason string) error
	Resume(ctx context.Context, actor, project, reason string) error
	Requests() []ledger.PermitRequest
	LatestCheckpoint() (ledger.SignedCheckpoint, error)
}

// ledgerProject is the ledger's form of a project request body.
func ledgerProject(req ProjectRequest) ledger.Project {
	for t, cols := range req.Allow {
		if cols == nil {
			req.Allow[t] = []string{} // null: every column
		}
	}
	return ledger.Project{
		ID: req.ID, Purpose: req.Purpose, LegalBasis: req.LegalBasis, Approver: req.Approver, Allow: req.Allow,
		EpsilonBudget: req.EpsilonBudget, DeltaBudget: req.DeltaBudget, DefaultEpsilon: req.DefaultEpsilon, DefaultDelta: req.DefaultDelta,
		MaxEpsilonPerQuery: req.MaxEpsilonPerQuery, MaxDeltaPerQuery: req.MaxDeltaPerQuery, Expires: req.Expires,
		PermitID: req.PermitID, IssuingBody: req.IssuingBody, Holder: req.Holder, ValidFrom: req.ValidFrom,
		OutputPolicy: req.OutputPolicy,
	}
}

// RequestList is the body of GET /v1/project-requests.
type RequestList struct {
	Requests []ledger.PermitRequest `json:"requests"`
}

// listRequests sends the requests: every one to the DPO, their own to a researcher or
// official.
func (s *Server) listRequests(w http.ResponseWriter, r *http.Request, u *User) error {
	if err := denyAdmin(u); err != nil {
		return err
	}
	all := s.led.Requests()
	if u.Role != RoleDPO {
		all = slices.DeleteFunc(all, func(rq ledger.PermitRequest) bool { return rq.RequestedBy != "user:"+u.Name })
	}
	if all == nil {
		all = []ledger.PermitRequest{}
	}
	return writeJSON(w, http.StatusOK, RequestList{Requests: all})
}

// requestProject records a researcher's or official's request for a project under a data
// permit. The approval does not make the requester a member: the users file (or the
// identity provider) says who belongs to which project.
func (s *Server) requestProject(w http.ResponseWriter, r *http.Request, u *User) error {
	if !u.Role.queries() {
		return problem(http.StatusForbidden, CodeForbidden, "only a researcher or an official may request a project")
	}
	var req ProjectRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	setProject(r, req.ID)
	req.Approver = ""
	if err := s.led.RequestProject(r.Context(), "user:"+u.Name, ledgerProject(req)); err != nil {
		return err
	}
	rq, ok := s.request(req.ID)
	if !ok {
		return errors.New("the request just recorded is not in the ledger")
	}
	w.Header().Set("Location", "/v1/project-requests")
	return writeJSON(w, http.StatusCreated, rq)
}

func (s *Server) request(id string) (ledger.PermitRequest, bool) {
	for _, rq := range s.led.Requests() {
		if rq.ID == id {
			return rq, true
		}
	}
	return ledger.PermitRequest{}, false
}

// ApproveRequest is the body of POST /v1/project-requests/{id}/approve: the amendments
// (each optional: what is left out stays as requested) and the DPO's reason.
type ApproveRequest struct {
	Allow              map[string][]string `json:"allow,omitempty"`
	EpsilonBudget      *float64            `json:"epsilon_budget,omitempty"`
	DeltaBudget        *float64            `json:"delta_budget,omitempty"`
	DefaultEpsilon     *float64            `json:"default_epsilon,omitempty"`
	DefaultDelta       *float64            `json:"default_delta,omitempty"`
	MaxEpsilonPerQuery *float64            `json:"max_epsilon_per_query,omitempty"`
	MaxDeltaPerQuery   *float64            `json:"max_delta_per_query,omitempty"`
	ValidFrom          *time.Time          `json:"valid_from,omitempty"`
	Expires            *time.Time          `json:"expires,omitempty"`
	Reason             string              `json:"reason,omitempty"`
}

// approve creates the project of a pending request as amended; the approver is the DPO.
func (s *Server) approve(ctx context.Context, u *User, id string, a ApproveRequest) (ledger.ProjectStatus, error) {
	rq, ok := s.request(id)
	if !ok || rq.Status != ledger.RequestPending {
		return ledger.ProjectStatus{}, ledger.ErrNoPendingRequest
	}
	p := rq.Project
	p.CreatedAt, p.Approver = time.Time{}, u.Name
	p.Allow = maps.Clone(p.Allow)
	if a.Allow != nil {
		p.Allow = a.Allow
		for t, cols := range p.Allow {
			if cols == nil {
				p.Allow[t] = []string{}
			}
		}
	}
	for _, f := range []struct {
		dst *float64
		v   *float64
	}{{&p.EpsilonBudget, a.EpsilonBudget}, {&p.DeltaBudget, a.DeltaBudget}, {&p.DefaultEpsilon, a.DefaultEpsilon},
		{&p.DefaultDelta, a.DefaultDelta}, {&p.MaxEpsilonPerQuery, a.MaxEpsilonPerQuery}, {&p.MaxDeltaPerQuery, a.MaxDeltaPerQuery}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if a.ValidFrom != nil {
		p.ValidFrom = *a.ValidFrom
	}
	if a.Expires != nil {
		p.Expires = *a.Expires
	}
	if err := s.led.ApproveRequest(ctx, "user:"+u.Name, p, a.Reason); err != nil {
		return ledger.ProjectStatus{}, err
	}
	return s.led.Project(id)
}

// approveRequest approves a pending request (DPO only).
func (s *Server) approveRequest(w http.ResponseWriter, r *http.Request, u *User) error {
	if err := requireDPO(u); err != nil {
		return err
	}
	id := r.PathValue("id")
	setProject(r, id)
	var a ApproveRequest
	if err := s.decodeJSON(w, r, &a); err != nil {
		return err
	}
	st, err := s.approve(r.Context(), u, id, a)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/projects/"+id)
	return writeJSON(w, http.StatusCreated, st)
}

// ReasonRequest is the body of reject, suspend and resume: the DPO's reason (required to
// reject and to suspend).
type ReasonRequest struct {
	Reason string `json:"reason"`
}

// rejectRequest rejects a pending request (DPO only).
func (s *Server) rejectRequest(w http.ResponseWriter, r *http.Request, u *User) error {
	return s.decision(w, r, u, func(ctx context.Context, actor, id, reason string) error {
		if err := s.led.RejectRequest(ctx, actor, id, reason); err != nil {
			return err
		}
		rq, _ := s.request(id)
		return writeJSON(w, http.StatusOK, rq)
	})
}

// suspendProject suspends a project (DPO only): its queries are refused, before any
// charge, with project_suspended and the reason, until it is resumed.
func (s *Server) suspendProject(w http.ResponseWriter, r *http.Request, u *User) error {
	return s.decision(w, r, u, s.projectDecision(w, s.led.Suspend))
}

// resumeProject lifts a suspension (DPO only).
func (s *Server) resumeProject(w http.ResponseWriter, r *http.Request, u *User) error {
	return s.decision(w, r, u, s.projectDecision(w, s.led.Resume))
}

func (s *Server) projectDecision(w http.ResponseWriter, f func(ctx context.Context, actor, id, reason string) error) func(ctx context.Context, actor, id, reason string) error {
	return func(ctx context.Context, actor, id, reason string) error {
		if _, err := s.led.Project(id); err != nil {
			return err
		}
		if err := f(ctx, actor, id, reason); err != nil {
			return err
		}
		st, err := s.led.Project(id)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, st)
	}
}

func (s *Server) decision(w http.ResponseWriter, r *http.Request, u *User, f func(ctx context.Context, actor, id, reason string) error) error {
	if err := requireDPO(u); err != nil {
		return err
	}
	id := r.PathValue("id")
	setProject(r, id)
	var req ReasonRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	return f(r.Context(), "user:"+u.Name, id, req.Reason)
}

// latestCheckpoint sends the latest signed checkpoint and its verifier key (DPO only).
func (s *Server) latestCheckpoint(w http.ResponseWriter, r *http.Request, u *User) error {
	if err := requireDPO(u); err != nil {
		return err
	}
	cp, err := s.led.LatestCheckpoint()
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, cp)
}
