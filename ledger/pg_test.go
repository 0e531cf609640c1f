package ledger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/velo-fse/velo/internal/pgtest"
	"github.com/velo-fse/velo/ledger"
)

// The PostgreSQL ledger's tests run a private PostgreSQL server (internal/pgtest) and
// mirror the file ledger's: the same entries and rules, several replicas (several *PG on
// one database) charging at once, tampering found by verify, the export checked offline.

func openPG(t *testing.T, dsn string, opts ledger.Options) *ledger.PG {
	t.Helper()
	l, err := ledger.OpenPostgres(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func verifyPG(t *testing.T, dsn string) ledger.VerifyReport {
	t.Helper()
	rep, err := ledger.VerifyPostgres(context.Background(), dsn, ledger.VerifyOptions{})
	if err != nil {
		t.Fatalf("VerifyPostgres: %v", err)
	}
	return rep
}

// TestPGLedger: the operations of the file ledger on one PostgreSQL ledger opened by two
// replicas: a project made by one is charged by the other, a release made by one is cached
// by the other, refunds return budget, a second settlement is refused; reopened, the
// ledger holds the same state; verify passes; the export to a state directory passes the
// file ledger's offline Verify with the same head and the same entries.
func TestPGLedger(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "ledger")
	key := filepath.Join(t.TempDir(), "checkpoint.key")
	ctx := context.Background()
	a := openPG(t, dsn, ledger.Options{KeyFile: key, CheckpointEvery: 4})
	b := openPG(t, dsn, ledger.Options{KeyFile: key, CheckpointEvery: 4})

	if err := a.CreateProject(ctx, "dpo", project("wl", 1, 1e-6)); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateProject(ctx, "dpo", project("wl", 1, 1e-6)); !errors.Is(err, ledger.ErrProjectExists) {
		t.Fatalf("second CreateProject on the other replica: %v, want ErrProjectExists", err)
	}
	req := chargeReq("wl", "SELECT count(*) FROM bookings", 0.25, 1e-7)
	c, err := b.Charge(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	rel := json.RawMessage(`{"rows": [[1, 2]]}`)
	if err := b.Release(ctx, c, rel); err != nil {
		t.Fatal(err)
	}
	if err := a.Refund(ctx, c, "late"); !errors.Is(err, ledger.ErrAlreadySettled) {
		t.Fatalf("refund of a released charge on the other replica: %v, want ErrAlreadySettled", err)
	}
	got, ok := a.Cached("wl", ledger.SQLHash(req.SQL), req.Options, req.DatasetVersion)
	if !ok || string(got) != `{"rows":[[1,2]]}` {
		t.Fatalf("replica a's cache = %s, %v; want the release replica b recorded", got, ok)
	}
	c2, err := a.Charge(ctx, chargeReq("wl", "SELECT 2", 0.5, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Refund(ctx, c2, "failed before reading data"); err != nil {
		t.Fatal(err)
	}
	if err := a.Grant(ctx, "dpo", "wl", ledger.Budget{Epsilon: 0.5}, "more"); err != nil {
		t.Fatal(err)
	}
	_, err = b.Charge(ctx, chargeReq("wl", "SELECT 3", 1.5, 0))
	var be *ledger.BudgetError
	if !errors.As(err, &be) || be.Left.Epsilon != 1.25 || be.Total.Epsilon != 1.5 {
		t.Fatalf("over-budget charge: %v, want a BudgetError with 1.25 left of 1.5", err)
	}
	st, err := b.Project("wl")
	if err != nil || st.Spent.Epsilon != 0.25 || st.Total.Epsilon != 1.5 || st.Queries != 1 {
		t.Fatalf("project = %+v, %v", st, err)
	}
	if n := len(b.Entries("", 0)); n != 6 {
		t.Fatalf("%d entries on b, want 6", n)
	}
	entries := a.Entries("", 0)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Charge(ctx, req); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("charge after Close: %v", err)
	}

	rep := verifyPG(t, dsn)
	if rep.Entries != 6 || rep.Checkpoints != 2 || rep.Signed != 6 || rep.Kinds[ledger.KindCharge] != 2 {
		t.Fatalf("verify report %+v: want 6 entries, checkpoints at 4 and at Close (6)", rep)
	}
	re := openPG(t, dsn, ledger.Options{KeyFile: key})
	if st2, _ := re.Project("wl"); st2.Spent != st.Spent || st2.Total != st.Total {
		t.Fatalf("reopened: %+v, want %+v", st2, st)
	}

	// The export: a state directory the file ledger's Verify checks offline.
	out := filepath.Join(t.TempDir(), "export")
	n, err := ledger.DumpPostgres(ctx, dsn, out)
	if err != nil || n != 6 {
		t.Fatalf("DumpPostgres: %d, %v", n, err)
	}
	frep, err := ledger.Verify(out, ledger.VerifyOptions{})
	if err != nil {
		t.Fatalf("offline Verify of the export: %v", err)
	}
	if frep.Head != rep.Head || frep.Signed != 6 || frep.Checkpoints != 2 {
		t.Fatalf("offline report %+v, online %+v", frep, rep)
	}
	fentries, _, err := ledger.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	pentries, _, err := ledger.ReadPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var x, y, z bytes.Buffer
	for _, p := range []struct {
		b *bytes.Buffer
		e []ledger.Entry
	}{{&x, entries}, {&y, fentries}, {&z, pentries}} {
		if err := ledger.WriteNDJSON(p.b, p.e); err != nil {
			t.Fatal(err)
		}
	}
	if x.String() != y.String() || y.String() != z.String() {
		t.Fatalf("entries differ between the live ledger, the export and ReadPostgres:\n%s\n%s\n%s", &x, &y, &z)
	}
}

// TestPGConcurrentReplicas: three replicas (three *PG on one database), 180 goroutines
// charging different queries at once against a budget for exactly 37: exactly 37 succeed,
// the rest get ErrBudgetExhausted; half the successes are released, half refunded and
// charged again until the budget is spent; verify passes and re-sums the same budget.
func TestPGConcurrentReplicas(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "ledger")
	key := filepath.Join(t.TempDir(), "checkpoint.key")
	ctx := context.Background()
	reps := make([]*ledger.PG, 3)
	for i := range reps {
		reps[i] = openPG(t, dsn, ledger.Options{KeyFile: key, CheckpointEvery: 16})
	}
	p := project("wl", 3.7, 0)
	if err := reps[0].CreateProject(ctx, "dpo", p); err != nil {
		t.Fatal(err)
	}
	var (
		wg                sync.WaitGroup
		start             = make(chan struct{})
		mu                sync.Mutex
		ok, empty, refund int
		other             []error
		seqs              = map[uint64]bool{}
	)
	for i := range 180 {
		wg.Go(func() {
			<-start
			l := reps[i%3]
			for try := 0; ; try++ {
				c, err := l.Charge(ctx, chargeReq("wl", fmt.Sprintf("SELECT count(*) FROM bookings WHERE x = %d AND try = %d", i, try), 0.1, 0))
				if err == nil && i%2 == 0 && try == 0 {
					// Refunded (on another replica): its budget goes back for others.
					err = reps[(i+1)%3].Refund(ctx, c, "failed before reading data")
					mu.Lock()
					refund++
					mu.Unlock()
					if err != nil {
						mu.Lock()
						other = append(other, err)
						mu.Unlock()
						return
					}
					continue
				}
				if err == nil {
					err = reps[(i+2)%3].Release(ctx, c, json.RawMessage(`{"n":1}`))
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
					seqs[c.Seq] = true
				case errors.Is(err, ledger.ErrBudgetExhausted):
					empty++
				default:
					other = append(other, err)
				}
				return
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != 37 || empty != 180-37 || len(other) > 0 || len(seqs) != 37 {
		t.Fatalf("%d charged and released, %d exhausted, other errors %v, %d distinct seqs; want 37/143/none/37", ok, empty, other, len(seqs))
	}
	for _, l := range reps {
		st, err := l.Project("wl")
		if err != nil || st.Spent.Epsilon != 3.7 || st.Left.Epsilon != 0 || st.Queries != 37 {
			t.Fatalf("project = %+v, %v; want 3.7 spent by 37 queries", st, err)
		}
	}
	for _, l := range reps {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rep := verifyPG(t, dsn)
	if rep.Kinds[ledger.KindRelease] != 37 || rep.Kinds[ledger.KindRefund] != refund || rep.Projects[0].Spent.Epsilon != 3.7 || rep.Signed != uint64(rep.Entries) {
		t.Fatalf("verify report %+v", rep)
	}
}

// TestPGTamper: an entry edited in SQL makes verify (and opening) fail naming that entry;
// an edit that also recomputes the stored hash is named at the next entry, whose prev no
// longer matches; removed entries and a rewritten tail are caught by the signed
// checkpoints, also against the DPO's own copies; a replica with another key is refused.
func TestPGTamper(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	dir := t.TempDir()
	key := filepath.Join(dir, "checkpoint.key")
	setup := func(db string) string {
		dsn := srv.NewDatabase(t, db)
		l := openPG(t, dsn, ledger.Options{KeyFile: key, CheckpointEvery: 3})
		if err := l.CreateProject(ctx, "dpo", project("wl", 10, 0)); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			c, err := l.Charge(ctx, chargeReq("wl", fmt.Sprintf("SELECT %d", i), 1, 0))
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Release(ctx, c, json.RawMessage(`{"n":1}`)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		verifyPG(t, dsn)
		return dsn
	}
	wantCorrupt := func(dsn string, seq uint64, reason string) {
		t.Helper()
		_, err := ledger.VerifyPostgres(ctx, dsn, ledger.VerifyOptions{})
		var ce *ledger.CorruptError
		if !errors.As(err, &ce) || ce.Seq != seq || !strings.Contains(ce.Reason, reason) {
			t.Fatalf("verify: %v; want a CorruptError at entry %d saying %q", err, seq, reason)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("entry %d", seq)) {
			t.Fatalf("verify's message %q does not name entry %d", err, seq)
		}
		if _, err := ledger.OpenPostgres(ctx, dsn, ledger.Options{KeyFile: key}); !errors.Is(err, ledger.ErrCorrupt) {
			t.Fatalf("open of a tampered ledger: %v, want ErrCorrupt", err)
		}
	}

	// A charge made cheaper: the stored hash no longer matches the body.
	dsn := setup("edit")
	if n := srv.Exec(t, "edit", `UPDATE velo_ledger SET body = convert_to(replace(convert_from(body, 'UTF8'), '"epsilon":1,', '"epsilon":0.5,'), 'UTF8') WHERE seq = 4`); n != 1 {
		t.Fatalf("updated %d rows", n)
	}
	wantCorrupt(dsn, 4, "stored hash does not match")

	// The same edit with the hash recomputed: entry 5's prev is the old hash.
	dsn = setup("rehash")
	srv.Exec(t, "rehash", `CREATE EXTENSION IF NOT EXISTS pgcrypto`)
	srv.Exec(t, "rehash", `UPDATE velo_ledger SET body = convert_to(replace(convert_from(body, 'UTF8'), '"epsilon":1,', '"epsilon":0.5,'), 'UTF8') WHERE seq = 4`)
	srv.Exec(t, "rehash", `UPDATE velo_ledger SET hash = digest(convert_to('velo/ledger/v1', 'UTF8') || '\x00'::bytea || (SELECT hash FROM velo_ledger WHERE seq = 3) || body, 'sha256') WHERE seq = 4`)
	wantCorrupt(dsn, 5, "prev does not match")

	// The last entries removed: the signed checkpoint of all 11 names what is missing.
	dsn = setup("cut")
	cps := filepath.Join(dir, "dpo-checkpoints")
	if _, err := ledger.DumpPostgres(ctx, dsn, filepath.Join(dir, "dpo")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "dpo", "checkpoints"), cps); err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, "cut", `DELETE FROM velo_ledger WHERE seq > 9`)
	wantCorrupt(dsn, 11, "entries were removed")
	// Even with the checkpoints table emptied too, the DPO's copy still catches it.
	srv.Exec(t, "cut", `DELETE FROM velo_ledger_checkpoints`)
	if _, err := ledger.VerifyPostgres(ctx, dsn, ledger.VerifyOptions{}); err != nil {
		t.Fatalf("with no checkpoints left, the shortened chain is consistent: %v", err)
	}
	_, err := ledger.VerifyPostgres(ctx, dsn, ledger.VerifyOptions{CheckpointsFile: cps, PublicKeyFile: filepath.Join(dir, "dpo", "checkpoint.pub")})
	if !errors.Is(err, ledger.ErrCorrupt) || !strings.Contains(err.Error(), "entries were removed") {
		t.Fatalf("verify against the DPO's checkpoints: %v", err)
	}

	// Another key on a replica is refused.
	other := filepath.Join(t.TempDir(), "checkpoint.key")
	if _, err := ledger.OpenPostgres(ctx, srv.DSN("rehash"), ledger.Options{KeyFile: other}); err == nil || !strings.Contains(err.Error(), "same key") {
		t.Fatalf("a replica with another key: %v", err)
	}
}

// TestPGClockAndExpiry: entry times never go back whichever replica writes (a replica whose
// clock is behind takes the last entry's time), and an expired project refuses charges and
// Active on every replica.
func TestPGClockAndExpiry(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "ledger")
	key := filepath.Join(t.TempDir(), "checkpoint.key")
	ctx := context.Background()
	ahead, behind := newClock(), newClock()
	ahead.Set(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	a := openPG(t, dsn, ledger.Options{KeyFile: key, Now: ahead.Now})
	b := openPG(t, dsn, ledger.Options{KeyFile: key, Now: behind.Now})
	p := project("wl", 10, 0)
	p.Expires = time.Date(2026, 6, 1, 0, 0, 1, 0, time.UTC)
	if err := b.CreateProject(ctx, "dpo", p); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Charge(ctx, chargeReq("wl", "SELECT 1", 1, 0)); err != nil {
		t.Fatal(err)
	}
	c, err := b.Charge(ctx, chargeReq("wl", "SELECT 2", 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if c.Time.Before(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("replica b's charge at %v, before replica a's", c.Time)
	}
	ahead.Set(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	if _, err := a.Charge(ctx, chargeReq("wl", "SELECT 3", 1, 0)); !errors.Is(err, ledger.ErrProjectExpired) {
		t.Fatalf("charge after expiry: %v", err)
	}
	if err := b.Active("wl"); err != nil {
		t.Fatalf("b's clock has not reached the expiry and no entry has: %v", err)
	}
	if err := a.Grant(ctx, "dpo", "wl", ledger.Budget{Epsilon: 1}, ""); err != nil {
		t.Fatal(err)
	}
	if err := b.Active("wl"); !errors.Is(err, ledger.ErrProjectExpired) {
		t.Fatalf("b after an entry past the expiry: %v, want ErrProjectExpired", err)
	}
	verifyPG(t, dsn)
}

// TestPGNoPasswordInErrors: a wrong password, a DSN in a message: the password never
// appears; RedactDSN hides it.
func TestPGNoPasswordInErrors(t *testing.T) {
	srv := pgtest.Start(t)
	srv.NewDatabase(t, "ledger")
	bad := strings.Replace(srv.DSN("ledger"), srv.Password, "wrong-Secret-42", 1)
	_, err := ledger.OpenPostgres(context.Background(), bad, ledger.Options{KeyFile: filepath.Join(t.TempDir(), "k.key")})
	if err == nil || strings.Contains(err.Error(), "wrong-Secret-42") || !strings.Contains(err.Error(), "xxxxx") {
		t.Fatalf("open with a wrong password: %v (want an error naming the redacted URL)", err)
	}
	_, err = ledger.VerifyPostgres(context.Background(), bad, ledger.VerifyOptions{})
	if err == nil || strings.Contains(err.Error(), "wrong-Secret-42") {
		t.Fatalf("verify with a wrong password: %v", err)
	}
	for dsn, want := range map[string]string{
		"postgres://velo:s3cret@db:5432/velo?sslmode=disable": "postgres://velo:xxxxx@db:5432/velo?sslmode=disable",
		"postgresql://db/velo?password=s3cret&user=velo":      "postgresql://db/velo?password=xxxxx&user=velo",
		"postgres://velo@db/velo":                             "postgres://velo@db/velo",
	} {
		if got := ledger.RedactDSN(dsn); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", dsn, got, want)
		}
	}
}

// TestPGLeastPrivilege: once the tables exist, a replica needs only SELECT and INSERT: a
// database user with no more opens the ledger, charges and releases, and cannot change or
// remove an entry.
func TestPGLeastPrivilege(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "ledger")
	key := filepath.Join(t.TempDir(), "checkpoint.key")
	ctx := context.Background()
	owner := openPG(t, dsn, ledger.Options{KeyFile: key})
	if err := owner.CreateProject(ctx, "dpo", project("wl", 1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := owner.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, "ledger", `CREATE ROLE replica LOGIN PASSWORD 'replica-pw'`)
	srv.Exec(t, "ledger", `GRANT SELECT, INSERT ON velo_ledger, velo_ledger_checkpoints, velo_ledger_meta TO replica`)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("replica", "replica-pw")
	l := openPG(t, u.String(), ledger.Options{KeyFile: key, CheckpointEvery: 2})
	c, err := l.Charge(ctx, chargeReq("wl", "SELECT 1", 0.5, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, c, json.RawMessage(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := ledger.VerifyPostgres(ctx, u.String(), ledger.VerifyOptions{})
	if err != nil || rep.Entries != 3 || rep.Signed != 3 {
		t.Fatalf("verify as the replica's user: %+v, %v", rep, err)
	}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{`UPDATE velo_ledger SET body = body WHERE seq = 2`, `DELETE FROM velo_ledger WHERE seq = 3`} {
		if _, err := conn.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as the replica's user: %v, want permission denied", stmt, err)
		}
	}
}

// TestPGDatabaseDown: with the database down, a charge fails with ErrWriteFailed (the API's
// 503 ledger_unavailable) and nothing is recorded; reads answer from the entries already
// read; once the database is back (recovered from its write-ahead log after a crash) every
// committed entry is there and charges resume.
func TestPGDatabaseDown(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "ledger")
	key := filepath.Join(t.TempDir(), "checkpoint.key")
	ctx := context.Background()
	l := openPG(t, dsn, ledger.Options{KeyFile: key})
	if err := l.CreateProject(ctx, "dpo", project("wl", 10, 0)); err != nil {
		t.Fatal(err)
	}
	c, err := l.Charge(ctx, chargeReq("wl", "SELECT 1", 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill(t)
	if _, err := l.Charge(ctx, chargeReq("wl", "SELECT 2", 1, 0)); !errors.Is(err, ledger.ErrWriteFailed) {
		t.Fatalf("charge with the database down: %v, want ErrWriteFailed", err)
	}
	if err := l.Release(ctx, c, json.RawMessage(`{"n":1}`)); !errors.Is(err, ledger.ErrWriteFailed) {
		t.Fatalf("release with the database down: %v, want ErrWriteFailed", err)
	}
	if st, err := l.Project("wl"); err != nil || st.Spent.Epsilon != 1 {
		t.Fatalf("project with the database down: %+v, %v; want the entries read so far", st, err)
	}
	srv.Restart(t)
	if err := l.Release(ctx, c, json.RawMessage(`{"n":1}`)); err != nil {
		t.Fatalf("release once the database is back: %v", err)
	}
	if _, err := l.Charge(ctx, chargeReq("wl", "SELECT 2", 1, 0)); err != nil {
		t.Fatalf("charge once the database is back: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := verifyPG(t, dsn); rep.Entries != 4 || rep.Projects[0].Spent.Epsilon != 2 {
		t.Fatalf("verify: %+v", rep)
	}
}

// TestPGReadersDoNotWaitForAppends: while the advisory lock is held elsewhere (another
// replica's append in progress), a charge waits for it, and the replica's readers —
// budgets, the release cache, the entries — still answer.
func TestPGReadersDoNotWaitForAppends(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "ledger")
	ctx := context.Background()
	l := openPG(t, dsn, ledger.Options{KeyFile: filepath.Join(t.TempDir(), "checkpoint.key")})
	if err := l.CreateProject(ctx, "dpo", project("wl", 10, 0)); err != nil {
		t.Fatal(err)
	}
	holder, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const lockKey = 0x76656c6f6c656467 // the ledger's advisory lock ("veloledg")
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockKey)); err != nil {
		t.Fatal(err)
	}
	charged := make(chan error, 1)
	go func() {
		_, err := l.Charge(ctx, chargeReq("wl", "SELECT 1", 1, 0))
		charged <- err
	}()
	// Wait until the charge is queued on the lock (a condition, polled with a deadline).
	deadline := time.Now().Add(time.Minute)
	for {
		var waiting int
		if err := holder.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the charge never waited for the advisory lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	read := make(chan string, 1)
	go func() {
		st, err := l.Project("wl")
		_, cached := l.Cached("wl", ledger.SQLHash("SELECT 1"), "", "v1")
		read <- fmt.Sprintf("%v %v %v %d", st.Spent.Epsilon, err, cached, len(l.Entries("", 0)))
	}()
	select {
	case got := <-read:
		if got != "0 <nil> false 1" {
			t.Fatalf("readers during a waiting append: %s", got)
		}
	case err := <-charged:
		t.Fatalf("the charge went through while the lock was held: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the readers waited for the append")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-charged; err != nil {
		t.Fatalf("charge once the lock is free: %v", err)
	}
	if st, _ := l.Project("wl"); st.Spent.Epsilon != 1 {
		t.Fatalf("spent %v after the charge", st.Spent.Epsilon)
	}
}

// A dummy run recorded by one replica is an entry every replica reads, with no cost and no
// budget change, and the chain verifies.
func TestPGDummy(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "ledger")
	key := filepath.Join(t.TempDir(), "checkpoint.key")
	ctx := context.Background()
	a := openPG(t, dsn, ledger.Options{KeyFile: key})
	b := openPG(t, dsn, ledger.Options{KeyFile: key})
	if err := a.CreateProject(ctx, "dpo", project("wl", 1, 1e-6)); err != nil {
		t.Fatal(err)
	}
	e, err := b.Dummy(ctx, ledger.DummyRequest{Actor: "user:alice", Project: "wl", SQL: "SELECT 1", Text: "SELECT 1",
		DatasetVersion: "dummy_v1", Release: json.RawMessage(`{"rows": [[1]], "dummy": true}`)})
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != ledger.KindDummy {
		t.Fatalf("entry kind %s, want %s", e.Kind, ledger.KindDummy)
	}
	if _, err := a.Dummy(ctx, ledger.DummyRequest{Actor: "user:alice", Project: "nope", SQL: "SELECT 1", Release: json.RawMessage(`{}`)}); !errors.Is(err, ledger.ErrUnknownProject) {
		t.Fatalf("dummy run of an unknown project: %v, want ErrUnknownProject", err)
	}
	st, err := a.Project("wl")
	if err != nil || st.Spent.Epsilon != 0 || st.Queries != 0 {
		t.Fatalf("project after a dummy run = %+v, %v; want nothing spent", st, err)
	}
	kinds := map[string]int{}
	for _, x := range a.Entries("wl", 0) {
		kinds[x.Kind]++
	}
	if kinds[ledger.KindDummy] != 1 {
		t.Fatalf("replica a reads %v, want the dummy entry replica b recorded", kinds)
	}
	if _, ok := a.Cached("wl", ledger.SQLHash("SELECT 1"), "", "dummy_v1"); ok {
		t.Fatal("a dummy release is served from the release cache")
	}
	if err := errors.Join(a.Close(), b.Close()); err != nil {
		t.Fatal(err)
	}
	if rep := verifyPG(t, dsn); rep.Kinds[ledger.KindDummy] != 1 {
		t.Fatalf("verify report %+v: want one dummy entry", rep)
	}
}
