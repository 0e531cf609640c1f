package notebooksapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
)

// withMember makes user a member of the projects given too (the users file's job).
func withMember(ts *testServer, user string, projects ...string) {
	var users []notebooksapi.User
	for _, u := range ts.Users {
		if u.Name == user {
			u.Projects = append(slices.Clone(u.Projects), projects...)
		}
		users = append(users, u)
	}
	ts.Users = users
	ts.Server.SetUsers(users)
}

func permitBody(id string) map[string]any {
	return map[string]any{
		"id": id, "purpose": "tempi di attesa per le prime visite", "legal_basis": "art. 9(2)(j) GDPR; D.Lgs. 'FSE 2.0'",
		"allow":     map[string]any{"booking": []string{}, "person": []string{"region", "sex"}},
		"permit_id": "HDAB-IT-2026-0042", "issuing_body": "Organismo di accesso ai dati sanitari", "holder": "Università di Padova",
		"epsilon_budget": 5, "delta_budget": 1e-6, "default_epsilon": 0.5,
	}
}

// problemIn reads a problem body whatever its Content-Type.
func problemIn(t *testing.T, b []byte) notebooksapi.Problem {
	t.Helper()
	var p notebooksapi.Problem
	mustJSON(t, b, &p)
	return p
}

const permitSQL = "SELECT region, COUNT(*) AS n FROM booking GROUP BY region"

// TestPermitWorkflowAPI: a researcher requests a project under a data permit; the DPO
// approves it amended; the researcher queries; the DPO suspends it and the researcher's
// query is refused before any charge with project_suspended, naming the project and the
// reason, in English or Italian by Accept-Language; resumed, it queries again. A permit
// valid from tomorrow is refused with project_not_yet_valid; a request is rejected with a
// reason. Only the DPO decides; everyone sees what they may.
func TestPermitWorkflowAPI(t *testing.T) {
	ts := startServer(t)
	withMember(ts, "rita", "newp", "later")
	query := func(project string, header ...string) (int, []byte) {
		resp, b := ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"sql": permitSQL, "project": project, "epsilon": 0.5}, header...)
		return resp.StatusCode, b
	}

	noPermit := permitBody("np")
	delete(noPermit, "permit_id")
	if resp, b := ts.call(t, "rita", "POST", "/v1/project-requests", noPermit); resp.StatusCode != 400 || problemIn(t, b).Field != "permit_id" {
		t.Fatalf("request without a permit ID: %d %s", resp.StatusCode, b)
	}
	resp, b := ts.call(t, "rita", "POST", "/v1/project-requests", permitBody("newp"))
	if resp.StatusCode != 201 {
		t.Fatalf("request: %d %s", resp.StatusCode, b)
	}
	var rq ledger.PermitRequest
	mustJSON(t, b, &rq)
	if rq.Status != "pending" || rq.RequestedBy != "user:rita" || rq.PermitID != "HDAB-IT-2026-0042" || rq.Holder != "Università di Padova" {
		t.Fatalf("request: %+v", rq)
	}
	if resp, b := ts.call(t, "otto", "POST", "/v1/project-requests", permitBody("newp")); resp.StatusCode != 409 || problemIn(t, b).Code != "request_pending" {
		t.Fatalf("second request: %d %s", resp.StatusCode, b)
	}
	if resp, b := ts.call(t, "dora", "POST", "/v1/project-requests", permitBody("x")); resp.StatusCode != 403 {
		t.Fatalf("request by the DPO: %d %s", resp.StatusCode, b)
	}
	for user, want := range map[string]int{"dora": 1, "rita": 1, "otto": 0} {
		resp, b := ts.call(t, user, "GET", "/v1/project-requests", nil)
		var list notebooksapi.RequestList
		mustJSON(t, b, &list)
		if resp.StatusCode != 200 || len(list.Requests) != want {
			t.Errorf("%s lists %d requests (%d), want %d", user, len(list.Requests), resp.StatusCode, want)
		}
	}
	if resp, _ := ts.call(t, "adam", "GET", "/v1/project-requests", nil); resp.StatusCode != 403 {
		t.Errorf("admin lists requests: %d", resp.StatusCode)
	}
	if status, b := query("newp"); status != 403 {
		t.Fatalf("query before the approval: %d %s", status, b)
	}
	if resp, _ := ts.call(t, "rita", "POST", "/v1/project-requests/newp/approve", map[string]any{}); resp.StatusCode != 403 {
		t.Fatalf("approval by the researcher: %d", resp.StatusCode)
	}

	// Approved, amended: less budget, no person columns.
	resp, b = ts.call(t, "dora", "POST", "/v1/project-requests/newp/approve", map[string]any{
		"epsilon_budget": 3, "allow": map[string]any{"booking": []string{}}, "reason": "person columns not needed"})
	if resp.StatusCode != 201 {
		t.Fatalf("approve: %d %s", resp.StatusCode, b)
	}
	var st ledger.ProjectStatus
	mustJSON(t, b, &st)
	if st.Total.Epsilon != 3 || st.Allows("person", "region") || st.Approver != "dora" || st.PermitID != "HDAB-IT-2026-0042" {
		t.Fatalf("approved project: %+v", st)
	}
	if resp, b := ts.call(t, "dora", "POST", "/v1/project-requests/newp/approve", map[string]any{}); resp.StatusCode != 409 || problemIn(t, b).Code != "no_pending_request" {
		t.Fatalf("second approval: %d %s", resp.StatusCode, b)
	}
	if status, b := query("newp"); status != 200 {
		t.Fatalf("query after the approval: %d %s", status, b)
	}

	// Suspended: refused before any charge, with the project and the reason.
	if resp, b := ts.call(t, "dora", "POST", "/v1/projects/newp/suspend", map[string]any{}); resp.StatusCode != 400 || problemIn(t, b).Field != "reason" {
		t.Fatalf("suspension without a reason: %d %s", resp.StatusCode, b)
	}
	resp, b = ts.call(t, "dora", "POST", "/v1/projects/newp/suspend", map[string]any{"reason": "audit del comitato etico"})
	if resp.StatusCode != 200 {
		t.Fatalf("suspend: %d %s", resp.StatusCode, b)
	}
	before := ts.project(t, "newp")
	status, b := query("newp")
	p := problemIn(t, b)
	if status != 403 || p.Code != "project_suspended" || p.Title != "Forbidden" || !strings.Contains(p.Detail, "project newp is suspended since") || !strings.Contains(p.Detail, "audit del comitato etico") {
		t.Fatalf("query while suspended: %d %s", status, b)
	}
	resp, b = ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"sql": permitSQL, "project": "newp", "epsilon": 0.5}, "Accept-Language", "it-IT,it;q=0.9,en;q=0.8")
	p = problemIn(t, b)
	if resp.StatusCode != 403 || p.Code != "project_suspended" || p.Title != "Accesso negato" || resp.Header.Get("Content-Language") != "it" ||
		!strings.Contains(p.Detail, "il progetto newp è sospeso dal") || !strings.Contains(p.Detail, "audit del comitato etico") {
		t.Fatalf("query while suspended, in Italian: %d %s", resp.StatusCode, b)
	}
	if after := ts.project(t, "newp"); after.Spent != before.Spent || after.Queries != before.Queries {
		t.Fatalf("a refused query was charged: %+v, before %+v", after.Spent, before.Spent)
	}
	if resp, b := ts.call(t, "dora", "POST", "/v1/projects/newp/resume", map[string]any{"reason": "audit concluso"}); resp.StatusCode != 200 {
		t.Fatalf("resume: %d %s", resp.StatusCode, b)
	}
	if status, b := query("newp"); status != 200 {
		t.Fatalf("query after the resume: %d %s", status, b)
	}
	if resp, _ := ts.call(t, "dora", "POST", "/v1/projects/nope/suspend", map[string]any{"reason": "x"}); resp.StatusCode != 404 {
		t.Errorf("suspend of no project: %d", resp.StatusCode)
	}

	// Not yet valid.
	later := permitBody("later")
	later["valid_from"] = time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	if resp, b := ts.call(t, "rita", "POST", "/v1/project-requests", later); resp.StatusCode != 201 {
		t.Fatalf("request later: %d %s", resp.StatusCode, b)
	}
	if resp, b := ts.call(t, "dora", "POST", "/v1/project-requests/later/approve", map[string]any{}); resp.StatusCode != 201 {
		t.Fatalf("approve later: %d %s", resp.StatusCode, b)
	}
	if status, b := query("later"); status != 403 || problemIn(t, b).Code != "project_not_yet_valid" || !strings.Contains(problemIn(t, b).Detail, "project later is not valid yet") {
		t.Fatalf("query before valid_from: %d %s", status, b)
	}

	// Rejected.
	if resp, b := ts.call(t, "otto", "POST", "/v1/project-requests", permitBody("otto-study")); resp.StatusCode != 201 {
		t.Fatalf("otto's request: %d %s", resp.StatusCode, b)
	}
	resp, b = ts.call(t, "dora", "POST", "/v1/project-requests/otto-study/reject", map[string]any{"reason": "finalità non ammessa"})
	mustJSON(t, b, &rq)
	if resp.StatusCode != 200 || rq.Status != "rejected" || rq.Reason != "finalità non ammessa" || rq.DecidedBy != "user:dora" {
		t.Fatalf("reject: %d %s", resp.StatusCode, b)
	}
	if resp, _ := ts.call(t, "dora", "GET", "/v1/projects/otto-study", nil); resp.StatusCode != 404 {
		t.Errorf("a rejected request made a project: %d", resp.StatusCode)
	}

	// Every step is in the ledger, and the chain verifies.
	kinds := map[string]int{}
	for _, e := range ts.Ledger.Entries("", 0) {
		kinds[e.Kind]++
	}
	if want := map[string]int{"request": 3, "approve": 2, "reject": 1, "suspend": 1, "resume": 1}; !subset(want, kinds) {
		t.Errorf("ledger kinds %v, want at least %v", kinds, want)
	}
	resp, b = ts.call(t, "dora", "GET", "/v1/ledger/verify", nil)
	var vr notebooksapi.VerifyResult
	mustJSON(t, b, &vr)
	if resp.StatusCode != 200 || !vr.OK || vr.Kinds["suspend"] != 1 {
		t.Errorf("verify: %d %s", resp.StatusCode, b)
	}
}

func subset(want, got map[string]int) bool {
	for k, n := range want {
		if got[k] != n {
			return false
		}
	}
	return true
}

// TestLatestCheckpointAPI: no checkpoint yet is a 404 in the client's language; once 64
// entries are signed, the DPO gets the note and its verifier key, and the note verifies.
func TestLatestCheckpointAPI(t *testing.T) {
	ts := startServer(t)
	resp, b := ts.call(t, "dora", "GET", "/v1/ledger/checkpoint", nil, "Accept-Language", "it")
	if p := problemIn(t, b); resp.StatusCode != 404 || p.Title != "Non trovato" || !strings.HasPrefix(p.Detail, "nessun checkpoint") {
		t.Fatalf("before any checkpoint: %d %s", resp.StatusCode, b)
	}
	for i := 0; i < 64; i++ {
		if err := ts.Ledger.Grant(context.Background(), "dora", "small", ledger.Budget{Epsilon: 0.01}, fmt.Sprint("top-up ", i)); err != nil {
			t.Fatal(err)
		}
	}
	if resp, _ := ts.call(t, "rita", "GET", "/v1/ledger/checkpoint", nil); resp.StatusCode != 403 {
		t.Errorf("researcher: %d", resp.StatusCode)
	}
	resp, b = ts.call(t, "dora", "GET", "/v1/ledger/checkpoint", nil)
	var cp ledger.SignedCheckpoint
	if err := json.Unmarshal(b, &cp); err != nil || resp.StatusCode != 200 || cp.Entries != 64 || !strings.HasPrefix(cp.Note, "velo/ledger/v1\n64\n") || cp.VerifierKey == "" {
		t.Fatalf("checkpoint: %d %s", resp.StatusCode, b)
	}
	verifyNote(t, cp)
}

// verifyNote checks a signed checkpoint with its own verifier key.
func verifyNote(t *testing.T, cp ledger.SignedCheckpoint) {
	t.Helper()
	v, err := note.NewVerifier(cp.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open([]byte(cp.Note), note.VerifierList(v)); err != nil {
		t.Fatalf("the checkpoint does not verify: %v", err)
	}
}

// TestLedgerPageFilters: the page's filters by user and by date select the charges shown
// and exported; a bad date or format is refused in the page's language.
func TestLedgerPageFilters(t *testing.T) {
	ts := startServer(t)
	runQueries(t, ts)
	rows := func(path string) int {
		t.Helper()
		resp, b := ts.call(t, "dora", "GET", path, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return strings.Count(string(b), `<tr class="charge">`)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	for path, want := range map[string]int{
		"/ledger":                3,
		"/ledger?user=otto":      1,
		"/ledger?user=user:rita": 1,
		"/ledger?project=wl":     2,
		"/ledger?from=" + today:  3,
		"/ledger?to=2000-01-01":  0,
		"/ledger?from=2000-01-01&to=" + today + "&user=grafana": 1,
	} {
		if got := rows(path); got != want {
			t.Errorf("%s: %d charge rows, want %d", path, got, want)
		}
	}
	resp, b := ts.call(t, "dora", "GET", "/ledger/export?format=ndjson&user=otto", nil)
	if n := strings.Count(string(b), `"kind":"charge"`); resp.StatusCode != 200 || n != 1 || resp.Header.Get("Content-Disposition") == "" {
		t.Errorf("NDJSON export of otto's entries: %d, %d charges", resp.StatusCode, n)
	}
	resp, b = ts.call(t, "dora", "GET", "/ledger?from=yesterday", nil, "Accept-Language", "it")
	if resp.StatusCode != 400 || !strings.Contains(string(b), "serve una data come AAAA-MM-GG") {
		t.Errorf("a bad date: %d %s", resp.StatusCode, b)
	}
	if resp, _ := ts.call(t, "dora", "GET", "/ledger/export?format=xml", nil); resp.StatusCode != 400 {
		t.Errorf("an unknown export format: %d", resp.StatusCode)
	}
	if resp, _ := ts.call(t, "rita", "GET", "/ledger/export?format=csv", nil); resp.StatusCode != 403 {
		t.Errorf("export by a researcher: %d", resp.StatusCode)
	}
}
