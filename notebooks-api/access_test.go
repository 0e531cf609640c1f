package notebooksapi_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/notebooks-api/apitest"
	"github.com/velo-fse/velo/query"
)

// TestExpiredProjectAndRemovedUsers: once a project's expiry passes (by the clock the
// ledger and the server share here) it gets nothing, with 403 project_expired: no new
// query, no dry run, not even a release already cached, and nothing reaches the ledger; its
// budget stays readable. A user whose tokens were revoked, or who was removed from the
// config, is refused with 401 naming the reason; one removed from a project gets 403 for
// it. (TestLoginFlow checks that a session made from a revoked token ends with it.)
func TestExpiredProjectAndRemovedUsers(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	state := filepath.Join(t.TempDir(), "state")
	led, err := ledger.Open(state, ledger.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	expires := clk.Now().Add(time.Hour)
	for _, p := range []ledger.Project{
		{ID: "wl", Purpose: "waiting lists", LegalBasis: "art. 9(2)(j) GDPR", Allow: map[string][]string{"booking": {}}, EpsilonBudget: 5, DefaultEpsilon: 0.5, Expires: expires},
		{ID: "other", Purpose: "another study", LegalBasis: "art. 9(2)(j) GDPR", Allow: map[string][]string{"booking": {}}, EpsilonBudget: 5, DefaultEpsilon: 0.5},
	} {
		if err := led.CreateProject(ctx, "dpo", p); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := query.Open(ctx, query.Config{DataDir: apitest.Dataset(t), Ledger: led, Limits: query.Limits{MemoryLimit: "512MB", Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	tokens := map[string]string{}
	var users []notebooksapi.User
	for _, u := range []notebooksapi.User{
		{Name: "rita", Role: notebooksapi.RoleResearcher, Projects: []string{"wl", "other"}},
		{Name: "otto", Role: notebooksapi.RoleResearcher, Projects: []string{"other"}},
		{Name: "paul", Role: notebooksapi.RoleResearcher, Projects: []string{"other"}},
		{Name: "dora", Role: notebooksapi.RoleDPO},
	} {
		tok, stored, err := notebooksapi.NewToken(nil)
		if err != nil {
			t.Fatal(err)
		}
		u.Tokens = []notebooksapi.Token{stored}
		users = append(users, u)
		tokens[u.Name] = tok
	}
	logs := &apitest.Buffer{}
	srv, err := notebooksapi.New(notebooksapi.Options{
		Engine: eng, Ledger: led, Users: users, Now: clk.Now, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Verify: func() (ledger.VerifyReport, error) { return ledger.Verify(state, ledger.VerifyOptions{}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()
	c := clientFrom(t, "127.0.0.1")
	q := func(user string, body map[string]any) (int, notebooksapi.Problem, []byte) {
		t.Helper()
		resp, b := send(t, c, "POST", base+"/v1/queries", tokens[user], body)
		var p notebooksapi.Problem
		if resp.StatusCode != 200 {
			p = problemOf(t, resp, b)
		}
		return resp.StatusCode, p, b
	}
	sql := "SELECT region, COUNT(*) AS n FROM booking GROUP BY region"
	if status, _, b := q("rita", map[string]any{"project": "wl", "sql": sql}); status != 200 {
		t.Fatalf("before the expiry: %d %s", status, b)
	}

	// Expiry: everything for the project is refused, nothing is written.
	clk.Add(time.Hour)
	entries := len(led.Entries("", 0))
	for name, body := range map[string]map[string]any{
		"a release already cached": {"project": "wl", "sql": sql},
		"a new query":              {"project": "wl", "sql": sql + " ORDER BY region"},
		"a dry run":                {"project": "wl", "sql": sql, "dry_run": true},
	} {
		status, p, b := q("rita", body)
		if status != 403 || p.Code != notebooksapi.CodeProjectExpired || !strings.Contains(p.Detail, "expired") || !strings.Contains(p.Detail, "cached") {
			t.Errorf("%s after the expiry: %d %s, want 403 project_expired", name, status, b)
		}
	}
	if n := len(led.Entries("", 0)); n != entries {
		t.Errorf("%d entries written for an expired project", n-entries)
	}
	resp, b := send(t, c, "GET", base+"/v1/projects/wl", tokens["rita"], nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"expires":"2026-03-01T10:00:00Z"`) {
		t.Errorf("the expired project's budget: %d %s", resp.StatusCode, b)
	}
	if status, _, b := q("rita", map[string]any{"project": "other", "sql": sql}); status != 200 {
		t.Errorf("another project of the same user: %d %s", status, b)
	}

	// Revoke otto's tokens, remove paul, take rita off "other".
	var next []notebooksapi.User
	for _, u := range users {
		switch u.Name {
		case "otto":
			u.Tokens = nil
		case "paul":
			continue
		case "rita":
			u.Projects = []string{"wl"}
		}
		next = append(next, u)
	}
	srv.SetUsers(next)
	for _, user := range []string{"otto", "paul"} {
		status, p, b := q(user, map[string]any{"project": "other", "sql": sql})
		if status != 401 || p.Code != notebooksapi.CodeUnauthorized || !strings.Contains(p.Detail, "revoked") {
			t.Errorf("%s after the change: %d %s, want 401 naming revocation", user, status, b)
		}
	}
	status, p, b := q("rita", map[string]any{"project": "other", "sql": sql})
	if status != 403 || p.Code != notebooksapi.CodeForbidden || !strings.Contains(p.Detail, "not a member of project") {
		t.Errorf("rita on a project she was removed from: %d %s", status, b)
	}
}
