package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/velo-fse/velo/ledger"
)

// clock is a fake time source that ticks a millisecond per reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func open(t *testing.T, dir string, opts ledger.Options) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func closeLedger(t *testing.T, l *ledger.Ledger) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func project(id string, eps, delta float64) ledger.Project {
	return ledger.Project{
		ID: id, Purpose: "waiting-list monitoring", LegalBasis: "art. 9(2)(h) GDPR", Approver: "dpo",
		Allow:         map[string][]string{"bookings": nil, "patients": {"region", "age_band"}},
		EpsilonBudget: eps, DeltaBudget: delta,
	}
}

func createProject(t *testing.T, l *ledger.Ledger, p ledger.Project) {
	t.Helper()
	if err := l.CreateProject(context.Background(), "dpo", p); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
}

func chargeReq(project, sql string, eps, delta float64) ledger.ChargeRequest {
	return ledger.ChargeRequest{
		Actor: "ana", Project: project, SQL: sql, Options: fmt.Sprintf("epsilon=%g,delta=%g", eps, delta),
		DatasetVersion: "v1", Cost: ledger.Budget{Epsilon: eps, Delta: delta},
		Mechanisms: json.RawMessage(`[{"for": "n", "mechanism": "laplace", "epsilon": ` + fmt.Sprint(eps) + `}]`),
	}
}

// query is what the engine does: answer from the cache, or charge, "run" and release.
func query(t *testing.T, l *ledger.Ledger, req ledger.ChargeRequest, run func() string) (json.RawMessage, bool) {
	t.Helper()
	if rel, ok := l.Cached(req.Project, ledger.SQLHash(req.SQL), req.Options, req.DatasetVersion); ok {
		return rel, true
	}
	c, err := l.Charge(context.Background(), req)
	if err != nil {
		t.Fatalf("Charge: %v", err)
	}
	rel := json.RawMessage(run())
	if err := l.Release(context.Background(), c, rel); err != nil {
		t.Fatalf("Release: %v", err)
	}
	return rel, false
}

func mustVerify(t *testing.T, dir string) ledger.VerifyReport {
	t.Helper()
	rep, err := ledger.Verify(dir, ledger.VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func mathInf() float64 { return math.Inf(1) }
