package ledger

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
)

// Store is a privacy ledger as the engine (query.Ledger), the API (notebooksapi.Ledger)
// and velo serve use it. Two implementations keep the same entries, the same hash chain and
// the same signed checkpoints: the file ledger (*Ledger, Open), held by one process, and the
// PostgreSQL ledger (*PG, OpenPostgres), shared by several velo serve replicas. Every
// guarantee of the package documentation holds for both; PG's own are in its documentation.
type Store interface {
	// CreateProject, Grant, Charge, Refund and Release append an entry and return once it
	// is durable; Charge refuses with ErrBudgetExhausted (a *BudgetError), ErrOverCap,
	// ErrUnknownProject, or an *InactiveError (ErrProjectExpired, ErrProjectSuspended,
	// ErrProjectNotYetValid).
	CreateProject(ctx context.Context, actor string, p Project) error
	Grant(ctx context.Context, actor, project string, add Budget, reason string) error
	Charge(ctx context.Context, req ChargeRequest) (Charge, error)
	Refund(ctx context.Context, c Charge, reason string) error
	Release(ctx context.Context, c Charge, release json.RawMessage) error
	// Dummy records a query answered on the dummy twin: no cost, no budget change.
	Dummy(ctx context.Context, req DummyRequest) (Entry, error)
	// RequestProject, ApproveRequest, RejectRequest, Suspend and Resume are the data
	// permit's workflow (permit.go); Requests lists the requests.
	RequestProject(ctx context.Context, actor string, p Project) error
	ApproveRequest(ctx context.Context, actor string, p Project, reason string) error
	RejectRequest(ctx context.Context, actor, project, reason string) error
	Suspend(ctx context.Context, actor, project, reason string) error
	Resume(ctx context.Context, actor, project, reason string) error
	Requests() []PermitRequest
	// LatestCheckpoint is the latest signed checkpoint with its verifier key (latest.go),
	// or ErrNoCheckpoint.
	LatestCheckpoint() (SignedCheckpoint, error)

	// Project, Projects, Active, Entries and Cached read the durable entries.
	Project(id string) (ProjectStatus, error)
	Projects() []ProjectStatus
	Active(id string) error
	Entries(project string, sinceSeq uint64) []Entry
	Cached(project, sqlHash, options, datasetVersion string) (json.RawMessage, bool)

	// Close writes a final signed checkpoint and lets the ledger go.
	Close() error
}

var (
	_ Store = (*Ledger)(nil)
	_ Store = (*PG)(nil)
)

// IsPostgres reports whether a ledger setting names a PostgreSQL ledger: a postgres:// or
// postgresql:// URL.
func IsPostgres(setting string) bool {
	s := strings.ToLower(strings.TrimSpace(setting))
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// RedactDSN returns a PostgreSQL URL fit for logs and messages: its password, and any
// password parameter, replaced by "xxxxx". A setting that does not parse as a URL is
// replaced whole: it could hold a password anywhere.
func RedactDSN(dsn string) string {
	u, err := url.Parse(strings.TrimSpace(dsn))
	if err != nil || u.Scheme == "" {
		return "(an unreadable PostgreSQL URL)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}
