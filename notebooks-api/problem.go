package notebooksapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/query"
)

// Stable problem codes (docs/api.md lists them with their statuses). Clients branch on
// these, never on the text.
const (
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden" // also query.CodeForbidden
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeNotAcceptable    = "not_acceptable"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeInvalidRequest   = "invalid_request"
	CodeTooLarge         = "request_too_large"
	CodeSQLRejected      = "sql_rejected"    // query.CodeRejected
	CodeInvalidOptions   = "invalid_options" // query.CodeOptions
	CodeBudgetExhausted  = "budget_exhausted"
	CodeProjectExpired   = "project_expired"
	CodeProjectExists    = "project_exists"
	// The data permit's workflow (permits.go).
	CodeProjectSuspended   = "project_suspended"
	CodeProjectNotYetValid = "project_not_yet_valid"
	CodeRequestPending     = "request_pending"
	CodeNoPendingRequest   = "no_pending_request"
	CodeTooManyQueries     = "too_many_queries"
	CodeQueryFailed        = "query_failed"      // after data was read: the charge stands
	CodeQueryNotStarted    = "query_not_started" // before data was read: not charged
	CodeInternal           = "internal_error"
)

// CodeLedgerUnavailable: a write or fsync of the ledger failed; nothing can be charged until
// the operator fixes its storage and restarts the server.
const CodeLedgerUnavailable = "ledger_unavailable"

// Problem is an RFC 9457 problem detail with Velo's extensions. Detail is public text.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Code     string `json:"code"`
	Instance string `json:"instance,omitempty"`
	// Position is the byte offset in the SQL the problem is about, when there is one.
	Position *int `json:"position,omitempty"`
	// Field names the request field at fault.
	Field string `json:"field,omitempty"`
	// Budget gives the numbers of a budget_exhausted refusal.
	Budget    *BudgetRefusal `json:"budget,omitempty"`
	RequestID string         `json:"request_id,omitempty"`

	retryAfter int   // seconds, for 429
	cause      error // logged, never sent
	// format and args made Detail (problem()); the Italian of format, when the client
	// asks for Italian, is in problemIT (i18n.go).
	format string
	args   []any
	// field is set for a ledger.FieldError: Detail is Field + ": " + field.
	field string
}

func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// BudgetRefusal is what a budget_exhausted problem says in numbers: the query's cost and
// the project's budget. A member of the project may read these anyway (GET /v1/projects/{id}).
type BudgetRefusal struct {
	Project string        `json:"project"`
	Asked   ledger.Budget `json:"asked"`
	Total   ledger.Budget `json:"total"`
	Spent   ledger.Budget `json:"spent"`
	Left    ledger.Budget `json:"left"`
}

// budgetProblem tells the researcher what the query asks and what is left, and how the
// budget grows: a DPO's grant. (A query asked before costs nothing: the cache answers it
// before any charge.)
func budgetProblem(err error) *Problem {
	var be *ledger.BudgetError
	if !errors.As(err, &be) {
		p := problem(http.StatusConflict, CodeBudgetExhausted, "the project's privacy budget does not cover this query; a DPO can grant more (POST /v1/projects/{id}/grants)")
		p.cause = err
		return p
	}
	p := problem(http.StatusConflict, CodeBudgetExhausted, "the project's privacy budget does not cover this query: it asks for epsilon %s and delta %s; project %s has epsilon %s and delta %s left "+
		"(of epsilon %s and delta %s; epsilon %s and delta %s spent). A DPO can grant more: POST /v1/projects/%s/grants, or velo project grant --state STATE --id %s --epsilon E "+
		"while no server holds the ledger. A query asked before is answered from the release cache at no cost.",
		num(be.Asked.Epsilon), num(be.Asked.Delta), be.Project, num(be.Left.Epsilon), num(be.Left.Delta),
		num(be.Total.Epsilon), num(be.Total.Delta), num(be.Spent.Epsilon), num(be.Spent.Delta), be.Project, be.Project)
	p.cause = err
	p.Budget = &BudgetRefusal{Project: be.Project, Asked: be.Asked, Total: be.Total, Spent: be.Spent, Left: be.Left}
	return p
}

// problem makes a Problem with public text.
func problem(status int, code, format string, args ...any) *Problem {
	return &Problem{Status: status, Code: code, Detail: fmt.Sprintf(format, args...), format: format, args: args}
}

// withCause records the error a problem stands for, for the log.
func (p *Problem) withCause(err error) *Problem {
	p.cause = err
	return p
}

// inactiveProblem says which project cannot be charged now and why, in the client's terms.
func inactiveProblem(ie *ledger.InactiveError) *Problem {
	at := ie.At.UTC().Format(time.RFC3339)
	switch ie.Cause {
	case ledger.ErrProjectSuspended:
		return problem(http.StatusForbidden, CodeProjectSuspended, "project %s is suspended since %s by the DPO, who gave this reason: %s. Nothing is charged or released until the DPO resumes it", ie.Project, at, ie.Reason).withCause(ie)
	case ledger.ErrProjectNotYetValid:
		return problem(http.StatusForbidden, CodeProjectNotYetValid, "project %s is not valid yet: its data permit is valid from %s; nothing is charged or released before then", ie.Project, at).withCause(ie)
	}
	return problem(http.StatusForbidden, CodeProjectExpired, "project %s expired on %s: it can no longer query, dry runs and releases already cached included (GET /v1/projects/{id} shows its expiry); the DPO may approve a new project", ie.Project, at).withCause(ie)
}

// asProblem maps an error to what the client is told. Only errors whose text is public by
// contract (query.Error, ledger.FieldError, our own Problems, the engine's generic
// sentinels and its BusyError's limit) keep their text; anything else is an internal error whose cause is logged.
func asProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var qe *query.Error
	if errors.As(err, &qe) {
		status := http.StatusBadRequest
		if qe.Code == query.CodeForbidden {
			status = http.StatusForbidden
		}
		p := &Problem{Status: status, Code: qe.Code, Detail: qe.Msg}
		if qe.Pos >= 0 {
			pos := qe.Pos
			p.Position = &pos
		}
		return p
	}
	var fe *ledger.FieldError
	var busy *query.BusyError
	var ie *ledger.InactiveError
	switch {
	case errors.As(err, &busy):
		p := problem(http.StatusTooManyRequests, CodeTooManyQueries, "the server is already running its limit of %d queries; retry shortly (nothing was charged)", busy.Limit)
		p.retryAfter = 1
		return p
	case errors.Is(err, ledger.ErrBudgetExhausted):
		return budgetProblem(err)
	case errors.Is(err, ledger.ErrOverCap):
		return problem(http.StatusBadRequest, CodeInvalidOptions, "the query asks for more epsilon or delta than the project allows per query").withCause(err)
	case errors.As(err, &ie):
		return inactiveProblem(ie)
	case errors.Is(err, ledger.ErrProjectExists):
		return problem(http.StatusConflict, CodeProjectExists, "a project with this ID already exists").withCause(err)
	case errors.Is(err, ledger.ErrRequestPending):
		return problem(http.StatusConflict, CodeRequestPending, "a request for this project ID is pending: the DPO decides it first").withCause(err)
	case errors.Is(err, ledger.ErrNoCheckpoint):
		return problem(http.StatusNotFound, CodeNotFound, "no checkpoint has been signed yet: one is signed every 64 entries and when the server stops").withCause(err)
	case errors.Is(err, ledger.ErrNoPendingRequest):
		return problem(http.StatusConflict, CodeNoPendingRequest, "no pending request for this project (GET /v1/project-requests lists them)").withCause(err)
	case errors.Is(err, ledger.ErrUnknownProject):
		return problem(http.StatusNotFound, CodeNotFound, "no such project").withCause(err)
	case errors.As(err, &fe):
		return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Detail: fe.Error(), Field: fe.Field, field: fe.Problem, cause: err}
	case errors.Is(err, ledger.ErrWriteFailed):
		return problem(http.StatusServiceUnavailable, CodeLedgerUnavailable, "the privacy ledger cannot record entries (its storage failed), so nothing can be charged and no result was released; the operator must fix the storage and restart the server").withCause(err)
	case errors.Is(err, query.ErrExecution):
		return &Problem{Status: http.StatusInternalServerError, Code: CodeQueryFailed, Detail: query.ErrExecution.Error(), cause: err}
	case errors.Is(err, query.ErrInternal):
		return &Problem{Status: http.StatusInternalServerError, Code: CodeQueryNotStarted, Detail: query.ErrInternal.Error(), cause: err}
	}
	return &Problem{Status: http.StatusInternalServerError, Code: CodeInternal, Detail: "internal error; the operator's log has the details", cause: err}
}

// writeProblem sends p as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	out := *p
	out.Type = "urn:velo:problem:" + p.Code
	l := langOf(r)
	out.Title = statusTitle(l, p.Status)
	if p.field != "" {
		out.Detail = trField(l, p.Field, p.field)
	} else {
		out.Detail = trDetail(l, p)
	}
	out.Instance = r.URL.Path
	if info := infoOf(r.Context()); info != nil {
		out.RequestID = info.id
		info.code = p.Code
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Language", l.Code())
	h.Set("Cache-Control", "no-store")
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="velo"`)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(out)
}
