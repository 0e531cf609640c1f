package ledger_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/velo-fse/velo/ledger"
)

func TestCreateGrantShow(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	clk := newClock()
	l := open(t, dir, ledger.Options{Now: clk.Now})
	p := project("wl", 5, 1e-5)
	p.Allow = map[string][]string{"Bookings": {}, "patients": {"Region", "age_band", "region"}}
	p.MaxEpsilonPerQuery, p.DefaultEpsilon, p.DefaultDelta = 1, 0.5, 1e-7
	createProject(t, l, p)
	if err := l.CreateProject(ctx, "dpo", p); !errors.Is(err, ledger.ErrProjectExists) {
		t.Errorf("second CreateProject: %v, want ErrProjectExists", err)
	}
	if err := l.Grant(ctx, "dpo", "wl", ledger.Budget{Epsilon: 2.5, Delta: 1e-6}, "phase 2"); err != nil {
		t.Fatal(err)
	}
	if err := l.Grant(ctx, "dpo", "nope", ledger.Budget{Epsilon: 1}, ""); !errors.Is(err, ledger.ErrUnknownProject) {
		t.Errorf("grant to unknown project: %v", err)
	}
	if _, err := l.Charge(ctx, chargeReq("wl", "SELECT count(*) FROM bookings", 0.5, 0)); err != nil {
		t.Fatal(err)
	}

	check := func(l *ledger.Ledger) {
		t.Helper()
		st, err := l.Project("wl")
		if err != nil {
			t.Fatal(err)
		}
		wantAllow := map[string][]string{"bookings": {}, "patients": {"age_band", "region"}}
		if diff := cmp.Diff(wantAllow, st.Allow); diff != "" {
			t.Errorf("allow-list (-want +got):\n%s", diff)
		}
		if !st.Allows("bookings", "anything") || !st.Allows("PATIENTS", "Region") || st.Allows("patients", "pid") || st.Allows("drugs", "") {
			t.Error("Allows does not follow the allow-list")
		}
		want := []ledger.Budget{{7.5, 1.1e-5}, {0.5, 0}, {7, 1.1e-5}}
		if diff := cmp.Diff(want, []ledger.Budget{st.Total, st.Spent, st.Left}); diff != "" {
			t.Errorf("total/spent/left (-want +got):\n%s", diff)
		}
		if st.Queries != 1 || st.Purpose != p.Purpose || st.MaxEpsilonPerQuery != 1 || st.DefaultDelta != 1e-7 || st.CreatedAt.IsZero() {
			t.Errorf("status = %+v", st)
		}
		if _, err := l.Project("nope"); !errors.Is(err, ledger.ErrUnknownProject) {
			t.Errorf("Project(nope): %v", err)
		}
		if ps := l.Projects(); len(ps) != 1 || ps[0].ID != "wl" {
			t.Errorf("Projects() = %+v", ps)
		}
	}
	check(l)
	closeLedger(t, l)
	check(open(t, dir, ledger.Options{Now: clk.Now}))
}

func TestCreateProjectValidation(t *testing.T) {
	l := open(t, t.TempDir(), ledger.Options{Now: newClock().Now})
	tests := []struct {
		name   string
		modify func(*ledger.Project)
		field  string
	}{
		{"bad id", func(p *ledger.Project) { p.ID = "Has Space" }, "id"},
		{"long id", func(p *ledger.Project) { p.ID = strings.Repeat("a", 65) }, "id"},
		{"no purpose", func(p *ledger.Project) { p.Purpose = " " }, "purpose"},
		{"no legal basis", func(p *ledger.Project) { p.LegalBasis = "" }, "legal_basis"},
		{"no tables", func(p *ledger.Project) { p.Allow = nil }, "allow"},
		{"bad table name", func(p *ledger.Project) { p.Allow = map[string][]string{"read_csv('x')": nil} }, "allow"},
		{"bad column name", func(p *ledger.Project) { p.Allow = map[string][]string{"bookings": {"a;b"}} }, "allow"},
		{"zero epsilon", func(p *ledger.Project) { p.EpsilonBudget = 0 }, "epsilon_budget"},
		{"negative epsilon", func(p *ledger.Project) { p.EpsilonBudget = -1 }, "epsilon_budget"},
		{"infinite epsilon", func(p *ledger.Project) { p.EpsilonBudget = mathInf() }, "epsilon_budget"},
		{"delta one", func(p *ledger.Project) { p.DeltaBudget = 1 }, "delta_budget"},
		{"epsilon cap above budget", func(p *ledger.Project) { p.MaxEpsilonPerQuery = 6 }, "max_epsilon_per_query"},
		{"delta cap above budget", func(p *ledger.Project) { p.MaxDeltaPerQuery = 1e-4 }, "max_delta_per_query"},
		{"default above cap", func(p *ledger.Project) { p.MaxEpsilonPerQuery, p.DefaultEpsilon = 1, 2 }, "default_epsilon"},
		{"default delta above budget", func(p *ledger.Project) { p.DefaultDelta = 1e-3 }, "default_delta"},
		{"expired", func(p *ledger.Project) { p.Expires = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) }, "expires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := project("p1", 5, 1e-5)
			tt.modify(&p)
			err := l.CreateProject(context.Background(), "dpo", p)
			var fe *ledger.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("CreateProject: %v, want a FieldError on %s", err, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name %s", err, tt.field)
			}
		})
	}
	if err := l.CreateProject(context.Background(), "", project("p1", 5, 0)); err == nil {
		t.Error("a project without an actor was accepted")
	}
	// Pure epsilon-DP projects (delta budget 0) are valid: Laplace queries with public keys.
	createProject(t, l, project("pure", 5, 0))
	if len(l.Entries("", 0)) != 1 {
		t.Errorf("rejected projects left entries: %d", len(l.Entries("", 0)))
	}
}

func TestChargeRules(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	l := open(t, t.TempDir(), ledger.Options{Now: clk.Now})
	p := project("wl", 1, 1e-5)
	p.MaxEpsilonPerQuery, p.MaxDeltaPerQuery = 0.5, 1e-6
	p.Expires = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	createProject(t, l, p)

	tests := []struct {
		name string
		req  ledger.ChargeRequest
		want error
	}{
		{"epsilon over cap", chargeReq("wl", "SELECT 1", 0.6, 0), ledger.ErrOverCap},
		{"delta over cap", chargeReq("wl", "SELECT 1", 0.1, 2e-6), ledger.ErrOverCap},
		{"unknown project", chargeReq("nope", "SELECT 1", 0.1, 0), ledger.ErrUnknownProject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Charge(ctx, tt.req); !errors.Is(err, tt.want) {
				t.Errorf("Charge: %v, want %v", err, tt.want)
			}
		})
	}
	fieldTests := []struct {
		name   string
		modify func(*ledger.ChargeRequest)
		field  string
	}{
		{"zero epsilon", func(r *ledger.ChargeRequest) { r.Cost.Epsilon = 0 }, "epsilon"},
		{"negative delta", func(r *ledger.ChargeRequest) { r.Cost.Delta = -1 }, "delta"},
		{"no sql", func(r *ledger.ChargeRequest) { r.SQL = "" }, "sql"},
		{"no dataset version", func(r *ledger.ChargeRequest) { r.DatasetVersion = "" }, "dataset_version"},
		{"no actor", func(r *ledger.ChargeRequest) { r.Actor = "" }, "actor"},
		{"bad mechanisms", func(r *ledger.ChargeRequest) { r.Mechanisms = []byte("{") }, "mechanisms"},
	}
	for _, tt := range fieldTests {
		t.Run(tt.name, func(t *testing.T) {
			req := chargeReq("wl", "SELECT 1", 0.1, 0)
			tt.modify(&req)
			var fe *ledger.FieldError
			if _, err := l.Charge(ctx, req); !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("Charge: %v, want a FieldError on %s", err, tt.field)
			}
		})
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Charge(cancelled, chargeReq("wl", "SELECT 1", 0.1, 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Charge with a cancelled context: %v", err)
	}
	if n := len(l.Entries("wl", 0)); n != 1 {
		t.Fatalf("refused charges left entries: %d entries", n)
	}

	for i := range 2 {
		if _, err := l.Charge(ctx, chargeReq("wl", "SELECT "+strconv.Itoa(i), 0.5, 1e-6)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := l.Charge(ctx, chargeReq("wl", "SELECT 3", 0.1, 0))
	var be *ledger.BudgetError
	if !errors.Is(err, ledger.ErrBudgetExhausted) || !errors.As(err, &be) {
		t.Fatalf("charge past the budget: %v", err)
	}
	// The refusal gives the numbers, exactly: what was asked, the total, spent and left.
	want := ledger.BudgetError{Project: "wl", Asked: ledger.Budget{Epsilon: 0.1}, Total: ledger.Budget{Epsilon: 1, Delta: 1e-5},
		Spent: ledger.Budget{Epsilon: 1, Delta: 2e-6}, Left: ledger.Budget{Epsilon: 0, Delta: 8e-6}}
	if be.Project != want.Project || be.Asked != want.Asked || be.Total != want.Total || be.Spent != want.Spent || be.Left != want.Left {
		t.Errorf("BudgetError %+v, want %+v", *be, want)
	}
	if msg := "privacy budget exhausted: the query asks for epsilon 0.1 and delta 0; project wl has epsilon 0 and delta 0.000008 left of epsilon 1 and delta 0.00001 (epsilon 1 and delta 0.000002 spent)"; be.Error() != msg {
		t.Errorf("message\n%s\nwant\n%s", be, msg)
	}
	if err := l.Grant(ctx, "dpo", "wl", ledger.Budget{Epsilon: 1}, "more"); err != nil {
		t.Fatal(err)
	}
	clk.Set(p.Expires)
	if _, err := l.Charge(ctx, chargeReq("wl", "SELECT 3", 0.1, 0)); !errors.Is(err, ledger.ErrProjectExpired) {
		t.Errorf("charge after expiry: %v", err)
	}
}

func TestRefundAndRelease(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := open(t, dir, ledger.Options{Now: newClock().Now})
	createProject(t, l, project("wl", 1, 0))
	c1, err := l.Charge(ctx, chargeReq("wl", "SELECT 1", 0.4, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Refund(ctx, c1, "parse error after charge"); err != nil {
		t.Fatal(err)
	}
	if err := l.Refund(ctx, c1, "again"); !errors.Is(err, ledger.ErrAlreadySettled) {
		t.Errorf("second refund: %v", err)
	}
	if err := l.Release(ctx, c1, []byte(`{}`)); !errors.Is(err, ledger.ErrAlreadySettled) {
		t.Errorf("release after refund: %v", err)
	}
	if st, _ := l.Project("wl"); st.Spent.Epsilon != 0 || st.Queries != 0 {
		t.Errorf("after refund: spent %v, queries %d", st.Spent, st.Queries)
	}
	c2, err := l.Charge(ctx, chargeReq("wl", "SELECT 2", 0.3, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, c2, []byte(`{"rows": [[1, "<a&b>"]]}`)); err != nil {
		t.Fatal(err)
	}
	for _, settle := range []func() error{
		func() error { return l.Release(ctx, c2, []byte(`{}`)) },
		func() error { return l.Refund(ctx, c2, "too late") },
	} {
		if err := settle(); !errors.Is(err, ledger.ErrAlreadySettled) {
			t.Errorf("settling a released charge: %v", err)
		}
	}
	if err := l.Release(ctx, ledger.Charge{Seq: 1}, []byte(`{}`)); err == nil {
		t.Error("released entry 1, which is not a charge")
	}
	if err := l.Release(ctx, c2, []byte(`{`)); err == nil {
		t.Error("accepted a release that is not JSON")
	}
	es := l.Entries("wl", c2.Seq)
	if len(es) != 1 || es[0].Kind != ledger.KindRelease || es[0].ChargeSeq != c2.Seq || string(es[0].Release) != `{"rows":[[1,"<a&b>"]]}` {
		t.Fatalf("release entry = %+v", es)
	}
	if es[0].ResultHash != ledger.SQLHash(string(es[0].Release)) { // both are SHA-256 of the bytes
		t.Error("result hash is not the SHA-256 of the stored release")
	}
	closeLedger(t, l)
	rep := mustVerify(t, dir)
	if rep.Projects[0].Spent.Epsilon != 0.3 || rep.Kinds[ledger.KindRefund] != 1 {
		t.Errorf("verify report = %+v", rep)
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, ledger.Options{})
	_, err := ledger.Open(dir, ledger.Options{})
	if !errors.Is(err, ledger.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	host, _ := os.Hostname()
	for _, want := range []string{"pid " + strconv.Itoa(os.Getpid()), host, "since"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("lock error %q does not name %q", err, want)
		}
	}
	mustVerify(t, dir) // Verify needs no lock
	closeLedger(t, l)
	closeLedger(t, open(t, dir, ledger.Options{}))
	if err := l.Grant(context.Background(), "dpo", "x", ledger.Budget{Epsilon: 1}, ""); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("Grant after Close: %v", err)
	}
}
