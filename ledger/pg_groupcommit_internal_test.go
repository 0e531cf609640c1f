package ledger

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/velo-fse/velo/internal/pgtest"
)

// pgGroup is a PostgreSQL ledger with project wl (epsilon budget eps) whose transactions
// are counted, and a connection of its own to the same database.
type pgGroup struct {
	l       *PG
	dsn     string
	holder  *pgx.Conn
	mu      sync.Mutex
	batches []int
}

func newPGGroup(t *testing.T, srv *pgtest.Server, db string, eps float64) *pgGroup {
	t.Helper()
	ctx := context.Background()
	g := &pgGroup{dsn: srv.NewDatabase(t, db)}
	var err error
	g.l, err = OpenPostgres(ctx, g.dsn, Options{KeyFile: filepath.Join(t.TempDir(), "checkpoint.key"), CheckpointEvery: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.l.Close() })
	p := Project{ID: "wl", Purpose: "p", LegalBasis: "b", Allow: map[string][]string{"booking": {}}, EpsilonBudget: eps}
	if err := g.l.CreateProject(ctx, "dpo", p); err != nil {
		t.Fatal(err)
	}
	g.l.onBatch = func(n int) {
		g.mu.Lock()
		g.batches = append(g.batches, n)
		g.mu.Unlock()
	}
	if g.holder, err = pgx.Connect(ctx, g.dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.holder.Close(context.Background()) })
	return g
}

func (g *pgGroup) transactions() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.batches)
}

// until polls cond (a state of the database, which no hook reports) until it holds,
// failing after a minute.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

// pileUpPG holds the ledger's advisory lock from another connection, starts one charge
// (whose transaction then waits for the lock) and then n more, and returns once the n are
// queued behind it; commit lets the lock go. ctxOf gives each of the n its context.
func (g *pgGroup) pileUpPG(t *testing.T, n int, eps float64, ctxOf func(i int) context.Context) (commit func(), results chan chargeResult) {
	t.Helper()
	ctx := context.Background()
	tx, err := g.holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgLockKey); err != nil {
		t.Fatal(err)
	}
	results = make(chan chargeResult, n+1)
	queued := make(chan struct{}, n+1)
	g.l.onQueue = func() { queued <- struct{}{} }
	t.Cleanup(func() { g.l.onQueue = nil })
	charge := func(ctx context.Context, i int) {
		c, err := g.l.Charge(ctx, ChargeRequest{Actor: "user:ana", Project: "wl", SQL: fmt.Sprintf("SELECT %d FROM booking", i),
			Options: fmt.Sprintf("epsilon=%g", eps), DatasetVersion: "v1", Cost: Budget{Epsilon: eps}})
		results <- chargeResult{c, err}
	}
	go charge(ctx, -1)
	<-queued
	until(t, "the first charge waits for the advisory lock", func() bool {
		var waiting int
		if err := g.holder.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		return waiting == 1
	})
	for i := range n {
		go charge(ctxOf(i), i)
	}
	for range n { // each queued behind the transaction that waits for the lock
		<-queued
	}
	return func() {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}, results
}

// TestPGGroupCommit: charges queued while a transaction waits share the next one: 40
// charges of 0.1 on a budget of 2 behind one already charging go in one transaction, in
// which each is checked against those before it — 19 fit, 20 are refused, the one whose
// caller gave up while queued is not recorded — and the chain, its checkpoints (every 8
// entries, several in the transaction) and the budget verify.
func TestPGGroupCommit(t *testing.T) {
	srv := pgtest.Start(t)
	g := newPGGroup(t, srv, "group", 2)
	gaveUp, cancel := context.WithCancel(context.Background())
	commit, results := g.pileUpPG(t, 40, 0.1, func(i int) context.Context {
		if i == 7 {
			return gaveUp
		}
		return context.Background()
	})
	cancel()
	commit()
	var ok, exhausted, canceled int
	seqs := map[uint64]bool{}
	for range 41 {
		r := <-results
		switch {
		case r.err == nil:
			ok++
			seqs[r.c.Seq] = true
		case errors.Is(r.err, ErrBudgetExhausted):
			exhausted++
		case errors.Is(r.err, context.Canceled):
			canceled++
		default:
			t.Errorf("charge: %v", r.err)
		}
	}
	if ok != 20 || exhausted != 20 || canceled != 1 {
		t.Fatalf("%d charged, %d exhausted, %d given up; want 20, 20, 1", ok, exhausted, canceled)
	}
	for seq := uint64(2); seq <= 21; seq++ {
		if !seqs[seq] {
			t.Fatalf("charges at %v; want entries 2 to 21", seqs)
		}
	}
	if got := g.transactions(); !slices.Equal(got, []int{1, 40}) {
		t.Fatalf("transactions of %v appends; want one of 1, then one of 40", got)
	}
	st, err := g.l.Project("wl")
	if err != nil || st.Spent.Epsilon != 2 || st.Queries != 20 {
		t.Fatalf("project = %+v, %v; want 2 spent by 20 queries", st, err)
	}
	// What this replica holds is what the table holds: another replica reads the same.
	other, err := OpenPostgres(context.Background(), g.dsn, Options{KeyFile: g.l.opts.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	if st2, err := other.Project("wl"); err != nil || st2.Spent != st.Spent || st2.Queries != st.Queries {
		t.Fatalf("another replica reads %+v, %v; want %+v", st2, err, st)
	}
	other.Close()
	if err := g.l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyPostgres(context.Background(), g.dsn, VerifyOptions{})
	if err != nil || rep.Entries != 21 || rep.Checkpoints < 3 || rep.Signed != 21 {
		t.Fatalf("verify: %+v, %v; want 21 entries, checkpoints at 8 and 16 and the head", rep, err)
	}
}

// TestPGGroupCommitFails: a transaction of many charges that the database refuses (an
// insert fails) fails every one of them with ErrWriteFailed and records none; the
// look-ahead state goes back to the committed entries, so the charges made once the
// database accepts inserts again follow the chain and the budget as if the failed ones had
// never been tried.
func TestPGGroupCommitFails(t *testing.T) {
	srv := pgtest.Start(t)
	g := newPGGroup(t, srv, "groupfail", 1)
	ctx := context.Background()
	for _, sql := range []string{
		`CREATE FUNCTION velo_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'inserts refused by the test'; END $$`,
		`CREATE TRIGGER velo_test_refuse BEFORE INSERT ON velo_ledger FOR EACH ROW EXECUTE FUNCTION velo_test_refuse()`,
	} {
		if _, err := g.holder.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	commit, results := g.pileUpPG(t, 10, 0.1, func(int) context.Context { return ctx })
	commit()
	for range 11 {
		if r := <-results; !errors.Is(r.err, ErrWriteFailed) {
			t.Fatalf("charge while inserts fail: %+v; want ErrWriteFailed", r)
		}
	}
	if got := g.transactions(); !slices.Equal(got, []int{1, 10}) {
		t.Fatalf("transactions of %v appends; want one of 1, then one of 10", got)
	}
	if _, err := g.holder.Exec(ctx, `DROP TRIGGER velo_test_refuse ON velo_ledger`); err != nil {
		t.Fatal(err)
	}
	commit, results = g.pileUpPG(t, 12, 0.1, func(int) context.Context { return ctx })
	commit()
	var ok int
	for range 13 {
		if r := <-results; r.err == nil {
			ok++
		} else if !errors.Is(r.err, ErrBudgetExhausted) {
			t.Fatal(r.err)
		}
	}
	if st, err := g.l.Project("wl"); ok != 10 || err != nil || st.Spent.Epsilon != 1 || st.Queries != 10 {
		t.Fatalf("%d charged once inserts are accepted, project %+v, %v; want 10 charges spending the budget of 1", ok, st, err)
	}
	if err := g.l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := VerifyPostgres(ctx, g.dsn, VerifyOptions{}); err != nil || rep.Entries != 11 {
		t.Fatalf("verify: %+v, %v; want the project and 10 charges", rep, err)
	}
}
