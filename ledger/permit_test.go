package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/velo-fse/velo/internal/pgtest"
	"github.com/velo-fse/velo/ledger"
)

func permitProject(id string) ledger.Project {
	p := project(id, 4, 1e-6)
	p.PermitID, p.IssuingBody, p.Holder = "HDAB-IT-2026-0042", "Ministero della Salute (HDAB)", "Università di Padova"
	p.Approver = ""
	return p
}

// permitWorkflow runs the data permit's workflow on a ledger, with the clock clk drives:
// request, the refusals before a decision, an approval that amends the columns and the
// budget, a charge, a suspension that refuses charges and Active with the reason, a resume,
// a not-yet-valid project, a rejection. It returns the kinds it expects the ledger to hold.
func permitWorkflow(t *testing.T, l ledger.Store, clk *clock) map[string]int {
	t.Helper()
	ctx := context.Background()
	req := permitProject("wl")
	noPermit := project("np", 1, 0)
	var fe *ledger.FieldError
	if err := l.RequestProject(ctx, "user:rita", noPermit); !errors.As(err, &fe) || fe.Field != "permit_id" {
		t.Fatalf("request without a permit: %v, want a permit_id field error", err)
	}
	if err := l.RequestProject(ctx, "user:rita", req); err != nil {
		t.Fatal(err)
	}
	if err := l.RequestProject(ctx, "user:otto", req); !errors.Is(err, ledger.ErrRequestPending) {
		t.Fatalf("second request for wl: %v, want ErrRequestPending", err)
	}
	if err := l.CreateProject(ctx, "dpo", project("wl", 1, 0)); !errors.Is(err, ledger.ErrRequestPending) {
		t.Fatalf("create under a pending request's ID: %v, want ErrRequestPending", err)
	}
	if err := l.Active("wl"); !errors.Is(err, ledger.ErrUnknownProject) {
		t.Fatalf("Active before the approval: %v, want ErrUnknownProject", err)
	}
	if _, err := l.Charge(ctx, chargeReq("wl", "SELECT 1", 1, 0)); !errors.Is(err, ledger.ErrUnknownProject) {
		t.Fatalf("charge before the approval: %v", err)
	}
	rs := l.Requests()
	if len(rs) != 1 || rs[0].Status != ledger.RequestPending || rs[0].RequestedBy != "user:rita" || rs[0].PermitID != req.PermitID || rs[0].Holder != req.Holder {
		t.Fatalf("requests: %+v", rs)
	}

	// An approval may not change the permit or the purpose; it may amend the columns and budget.
	bad := req
	bad.Purpose = "something else"
	if err := l.ApproveRequest(ctx, "dpo", bad, ""); err == nil || !strings.Contains(err.Error(), "purpose") {
		t.Fatalf("approval changing the purpose: %v", err)
	}
	amended := req
	amended.Allow = map[string][]string{"bookings": {"region", "wait_days"}}
	amended.EpsilonBudget = 2
	amended.Approver = "dora"
	if err := l.ApproveRequest(ctx, "dpo", amended, "columns narrowed to what the purpose needs"); err != nil {
		t.Fatal(err)
	}
	if err := l.ApproveRequest(ctx, "dpo", amended, ""); !errors.Is(err, ledger.ErrNoPendingRequest) {
		t.Fatalf("second approval: %v, want ErrNoPendingRequest", err)
	}
	st, err := l.Project("wl")
	if err != nil {
		t.Fatal(err)
	}
	if st.Total.Epsilon != 2 || st.Allows("patients", "") || !st.Allows("bookings", "wait_days") || st.Allows("bookings", "age") || st.PermitID != req.PermitID || st.IssuingBody != req.IssuingBody {
		t.Fatalf("approved project: %+v", st)
	}
	if _, err := l.Charge(ctx, chargeReq("wl", "SELECT 1", 0.5, 0)); err != nil {
		t.Fatal(err)
	}

	// Suspended: Active and Charge refuse, naming the project and the reason.
	if err := l.Suspend(ctx, "dpo", "wl", ""); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("suspension without a reason: %v", err)
	}
	if err := l.Suspend(ctx, "dpo", "wl", "ethics committee review"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Active": l.Active("wl"),
		"Charge": func() error { _, err := l.Charge(ctx, chargeReq("wl", "SELECT 2", 0.5, 0)); return err }(),
	} {
		var ie *ledger.InactiveError
		if !errors.Is(err, ledger.ErrProjectSuspended) || !errors.As(err, &ie) || ie.Project != "wl" || ie.Reason != "ethics committee review" ||
			!strings.Contains(err.Error(), "project wl suspended on") || !strings.Contains(err.Error(), "ethics committee review") {
			t.Fatalf("%s while suspended: %v", name, err)
		}
	}
	if st, _ := l.Project("wl"); !st.Suspended || st.SuspendReason != "ethics committee review" || st.Spent.Epsilon != 0.5 {
		t.Fatalf("suspended status: %+v", st)
	}
	if err := l.Suspend(ctx, "dpo", "wl", "again"); err == nil {
		t.Fatal("a second suspension was accepted")
	}
	if err := l.Resume(ctx, "dpo", "wl", "review passed"); err != nil {
		t.Fatal(err)
	}
	if err := l.Resume(ctx, "dpo", "wl", ""); err == nil {
		t.Fatal("resume of a project not suspended was accepted")
	}
	if err := l.Active("wl"); err != nil {
		t.Fatalf("Active after resume: %v", err)
	}
	if _, err := l.Charge(ctx, chargeReq("wl", "SELECT 3", 0.5, 0)); err != nil {
		t.Fatalf("charge after resume: %v", err)
	}

	// Not yet valid: a permit whose validity starts tomorrow.
	later := permitProject("later")
	now := clk.Now()
	later.ValidFrom = now.Add(24 * time.Hour)
	later.Expires = now.Add(48 * time.Hour)
	if err := l.RequestProject(ctx, "user:otto", later); err != nil {
		t.Fatal(err)
	}
	if err := l.ApproveRequest(ctx, "dpo", later, ""); err != nil {
		t.Fatal(err)
	}
	if err := l.Active("later"); !errors.Is(err, ledger.ErrProjectNotYetValid) || !strings.Contains(err.Error(), "valid from") {
		t.Fatalf("Active before valid_from: %v", err)
	}
	if _, err := l.Charge(ctx, chargeReq("later", "SELECT 1", 0.5, 0)); !errors.Is(err, ledger.ErrProjectNotYetValid) {
		t.Fatalf("charge before valid_from: %v", err)
	}
	clk.Set(now.Add(25 * time.Hour))
	if _, err := l.Charge(ctx, chargeReq("later", "SELECT 1", 0.5, 0)); err != nil {
		t.Fatalf("charge within the validity: %v", err)
	}
	clk.Set(now.Add(49 * time.Hour))
	if err := l.Active("later"); !errors.Is(err, ledger.ErrProjectExpired) {
		t.Fatalf("Active after the expiry: %v", err)
	}

	// Rejected: no project, the ID free for a new request.
	if err := l.RequestProject(ctx, "user:otto", permitProject("nope")); err != nil {
		t.Fatal(err)
	}
	if err := l.RejectRequest(ctx, "dpo", "nope", ""); err == nil {
		t.Fatal("a rejection without a reason was accepted")
	}
	if err := l.RejectRequest(ctx, "dpo", "nope", "the purpose is not among Art. 53's"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Project("nope"); !errors.Is(err, ledger.ErrUnknownProject) {
		t.Fatalf("rejected request made a project: %v", err)
	}
	if err := l.RejectRequest(ctx, "dpo", "nope", "again"); !errors.Is(err, ledger.ErrNoPendingRequest) {
		t.Fatalf("second rejection: %v", err)
	}
	rs = l.Requests()
	got := map[string]ledger.PermitRequest{}
	for _, r := range rs {
		got[r.ID] = r
	}
	if got["wl"].Status != ledger.RequestApproved || got["wl"].DecidedBy != "dpo" || got["nope"].Status != ledger.RequestRejected ||
		got["nope"].Reason != "the purpose is not among Art. 53's" || len(rs) != 3 {
		t.Fatalf("requests after the decisions: %+v", rs)
	}
	return map[string]int{ledger.KindRequest: 3, ledger.KindApprove: 2, ledger.KindReject: 1, ledger.KindSuspend: 1, ledger.KindResume: 1, ledger.KindCharge: 3}
}

func checkPermitEntries(t *testing.T, entries []ledger.Entry, want map[string]int) {
	t.Helper()
	kinds := map[string]int{}
	for _, e := range entries {
		kinds[e.Kind]++
		if e.Kind == ledger.KindApprove && e.Project == "wl" && (e.Definition == nil || e.Definition.EpsilonBudget != 2 || e.Reason == "") {
			t.Errorf("approve entry: %+v", e)
		}
		if e.Kind == ledger.KindSuspend && e.Reason == "" {
			t.Errorf("suspend entry: %+v", e)
		}
	}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d %s entries, want %d", kinds[k], k, n)
		}
	}
	var csv, nd bytes.Buffer
	if err := ledger.WriteCSV(&csv, entries); err != nil {
		t.Fatal(err)
	}
	if err := ledger.WriteNDJSON(&nd, entries); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{",request,", ",approve,", ",reject,", ",suspend,", ",resume,", "HDAB-IT-2026-0042", "ethics committee review"} {
		if !strings.Contains(csv.String(), s) {
			t.Errorf("the CSV export lacks %q", s)
		}
	}
	for _, s := range []string{`"kind":"request"`, `"kind":"suspend"`, `"permit_id":"HDAB-IT-2026-0042"`, `"holder":"Università di Padova"`} {
		if !strings.Contains(nd.String(), s) {
			t.Errorf("the NDJSON export lacks %q", s)
		}
	}
}

// TestPermitWorkflow: the workflow on the file ledger; Verify replays it (the same rules),
// a reopened ledger holds the same requests and suspensions, and the exports carry it.
func TestPermitWorkflow(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	l := open(t, dir, ledger.Options{Now: clk.Now, CheckpointEvery: 3})
	want := permitWorkflow(t, l, clk)
	if err := l.Suspend(context.Background(), "dpo", "wl", "kept across a reopen"); err != nil {
		t.Fatal(err)
	}
	want[ledger.KindSuspend]++
	checkLatestCheckpoint(t, l, 12) // every 3 entries: all 12
	reqs := l.Requests()
	closeLedger(t, l)
	rep := mustVerify(t, dir)
	for k, n := range want {
		if rep.Kinds[k] != n {
			t.Errorf("Verify counts %d %s entries, want %d", rep.Kinds[k], k, n)
		}
	}
	l = open(t, dir, ledger.Options{Now: clk.Now})
	if err := l.Active("wl"); !errors.Is(err, ledger.ErrProjectSuspended) || !strings.Contains(err.Error(), "kept across a reopen") {
		t.Fatalf("after reopening: %v", err)
	}
	if got := l.Requests(); len(got) != len(reqs) || got[0].Status != reqs[0].Status {
		t.Fatalf("requests after reopening: %+v, before %+v", got, reqs)
	}
	entries, _, err := ledger.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkPermitEntries(t, entries, want)
}

// TestPGPermitWorkflow: the same workflow on the PostgreSQL ledger, seen by a second
// replica; verify passes and the dump passes the file ledger's offline Verify.
func TestPGPermitWorkflow(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "ledger")
	key := filepath.Join(t.TempDir(), "checkpoint.key")
	clk := newClock()
	a := openPG(t, dsn, ledger.Options{KeyFile: key, Now: clk.Now, CheckpointEvery: 3})
	b := openPG(t, dsn, ledger.Options{KeyFile: key, Now: clk.Now})
	want := permitWorkflow(t, a, clk)
	if err := b.Suspend(context.Background(), "dpo", "wl", "suspended by the other replica"); err != nil {
		t.Fatal(err)
	}
	want[ledger.KindSuspend]++
	if err := a.Active("wl"); !errors.Is(err, ledger.ErrProjectSuspended) {
		t.Fatalf("replica a after b's suspension: %v", err)
	}
	if _, err := a.Charge(context.Background(), chargeReq("wl", "SELECT 9", 0.1, 0)); !errors.Is(err, ledger.ErrProjectSuspended) {
		t.Fatalf("replica a charging after b's suspension: %v", err)
	}
	checkLatestCheckpoint(t, b, 9) // a signs every 3 entries: 9 of its 11
	if len(b.Requests()) != 3 {
		t.Fatalf("replica b's requests: %+v", b.Requests())
	}
	rep := verifyPG(t, dsn)
	if rep.Kinds[ledger.KindSuspend] != 2 || rep.Kinds[ledger.KindRequest] != 3 {
		t.Fatalf("verify kinds: %v", rep.Kinds)
	}
	checkPermitEntries(t, b.Entries("", 0), want)
	dir := t.TempDir()
	if _, err := ledger.DumpPostgres(context.Background(), dsn, dir); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, dir)
}

// checkLatestCheckpoint: the latest signed checkpoint verifies with its key and covers
// at least minEntries entries.
func checkLatestCheckpoint(t *testing.T, l interface {
	LatestCheckpoint() (ledger.SignedCheckpoint, error)
}, minEntries uint64) {
	t.Helper()
	cp, err := l.LatestCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(cp.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(cp.Note), note.VerifierList(v))
	if err != nil {
		t.Fatalf("the latest checkpoint does not verify: %v\n%s", err, cp.Note)
	}
	t.Logf("latest checkpoint covers %d entries", cp.Entries)
	if want := fmt.Sprintf("velo/ledger/v1\n%d\n", cp.Entries); !strings.HasPrefix(n.Text, want) || cp.Entries < minEntries {
		t.Fatalf("checkpoint text %q, entries %d; want at least %d", n.Text, cp.Entries, minEntries)
	}
}
