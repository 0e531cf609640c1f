package notebooksapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/release"
)

// A project's history over loopback: every charge with its kind, text, cost and outcome,
// and the free dummy runs, oldest first and in pages; each release fetched again as it was
// answered, free. The DPO and the project's members read it; no one else, and no release
// of another project through it.
func TestProjectHistoryAndReleases(t *testing.T) {
	ts := startServer(t)
	const sql = "SELECT region, COUNT(*) AS n FROM booking GROUP BY region"
	resp, b := ts.call(t, "rita", "POST", "/v1/queries", notebooksapi.QueryRequest{SQL: sql, Project: "wl", Epsilon: f64p(0.5)})
	if resp.StatusCode != 200 {
		t.Fatalf("query: %d %s", resp.StatusCode, b)
	}
	var q release.Release
	mustJSON(t, b, &q)
	ts.call(t, "rita", "POST", "/v1/queries", notebooksapi.QueryRequest{SQL: sql, Project: "wl", Epsilon: f64p(0.5)}) // cached: not charged again
	ts.call(t, "rita", "POST", "/v1/queries", notebooksapi.QueryRequest{SQL: sql, Project: "wl", DryRun: true})       // a dry run: nothing recorded
	resp, b = ts.call(t, "grafana", "POST", "/v1/queries", notebooksapi.QueryRequest{SQL: sql, Project: "wl", Target: "dummy"})
	if resp.StatusCode != 200 {
		t.Fatalf("dummy: %d %s", resp.StatusCode, b)
	}
	var dummy release.Release
	mustJSON(t, b, &dummy)
	resp, b = ts.call(t, "rita", "POST", "/v1/marginals", notebooksapi.MarginalsRequest{Project: "wl", Table: "booking", Marginals: [][]string{{"region"}}, Epsilon: f64p(1), Delta: f64p(1e-7)})
	if resp.StatusCode != 200 {
		t.Fatalf("marginals: %d %s", resp.StatusCode, b)
	}
	var m struct {
		ReleaseID string `json:"release_id"`
	}
	mustJSON(t, b, &m)
	marginals := b
	resp, b = ts.call(t, "rita", "POST", "/v1/synthetic", notebooksapi.SyntheticRequest{Project: "wl", Table: "booking", Columns: []string{"priority", "region"},
		Method: "mst", Rows: 100, Epsilon: f64p(0.5), Delta: f64p(1e-7)})
	if resp.StatusCode != 200 {
		t.Fatalf("synthetic: %d %.300s", resp.StatusCode, b)
	}
	synID := resp.Header.Get("Velo-Release-Id")
	resp, b = ts.call(t, "otto", "POST", "/v1/queries", notebooksapi.QueryRequest{SQL: sql, Project: "other", Epsilon: f64p(0.5)})
	var others release.Release
	mustJSON(t, b, &others)

	history := func(user, query string) (int, notebooksapi.HistoryPage) {
		resp, b := ts.call(t, user, "GET", "/v1/projects/wl/history"+query, nil)
		var page notebooksapi.HistoryPage
		if resp.StatusCode == 200 {
			mustJSON(t, b, &page)
		}
		return resp.StatusCode, page
	}
	status, page := history("rita", "")
	if status != 200 || page.More || len(page.Charges) != 4 {
		t.Fatalf("history: %d, %+v", status, page)
	}
	want := []struct{ kind, actor, release string }{
		{"query", "user:rita", q.ReleaseID}, {"dummy", "user:grafana", dummy.ReleaseID}, {"marginals", "user:rita", m.ReleaseID},
		{"synthetic", "user:rita", synID},
	}
	for i, c := range page.Charges {
		w := want[i]
		if c.Kind != w.kind || c.Actor != w.actor || c.ReleaseID != w.release || c.Outcome != "released" || c.SQL == "" {
			t.Errorf("charge %d: %+v, want %s by %s, release %s", i, c, w.kind, w.actor, w.release)
		}
	}
	if c := page.Charges[0]; c.Text != sql || c.Epsilon != 0.5 || c.DatasetVersion != q.DatasetVersion {
		t.Errorf("the query's charge: %+v", c)
	}
	if page.Charges[1].Epsilon != 0 {
		t.Errorf("the dummy run cost %v", page.Charges[1].Epsilon)
	}
	// In pages of one, oldest first.
	var seqs []uint64
	for since := uint64(0); ; {
		status, p := history("grafana", fmt.Sprintf("?limit=1&since_seq=%d", since))
		if status != 200 || len(p.Charges) > 1 {
			t.Fatalf("page after %d: %d %+v", since, status, p)
		}
		if len(p.Charges) == 0 {
			break
		}
		seqs = append(seqs, p.Charges[0].Seq)
		since = p.NextSinceSeq
	}
	if len(seqs) != 4 || seqs[0] != page.Charges[0].Seq || seqs[3] != page.Charges[3].Seq {
		t.Errorf("paged: %v, whole: %+v", seqs, page.Charges)
	}

	// Each release again, as it was answered.
	resp, b = ts.call(t, "rita", "GET", "/v1/projects/wl/releases/"+q.ReleaseID, nil)
	var again release.Release
	mustJSON(t, b, &again)
	if resp.StatusCode != 200 || again.ReleaseID != q.ReleaseID || fmt.Sprint(again.Rows) != fmt.Sprint(q.Rows) || fmt.Sprint(again.CI) != fmt.Sprint(q.CI) {
		t.Errorf("release %s again: %d %s", q.ReleaseID, resp.StatusCode, b)
	}
	resp, b = ts.call(t, "dora", "GET", "/v1/projects/wl/releases/"+m.ReleaseID, nil)
	var m1, m2 map[string]any
	mustJSON(t, b, &m1)
	mustJSON(t, marginals, &m2)
	delete(m2, "budget_left")
	delete(m1, "budget_left")
	if resp.StatusCode != 200 || !bytes.Equal(mustMarshal(t, m1), mustMarshal(t, m2)) {
		t.Errorf("marginals %s again: %d\n%s\nwant\n%s", m.ReleaseID, resp.StatusCode, b, marginals)
	}
	if resp, b := ts.call(t, "grafana", "GET", "/v1/projects/wl/releases/"+dummy.ReleaseID, nil); resp.StatusCode != 200 || !bytes.Contains(b, []byte(dummy.ReleaseID)) {
		t.Errorf("dummy release again: %d %s", resp.StatusCode, b)
	}
	resp, b = ts.call(t, "rita", "GET", "/v1/projects/wl/releases/"+synID, nil)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"method":"mst"`)) || !bytes.Contains(b, []byte(synID)) {
		t.Errorf("synthetic release again: %d %.300s", resp.StatusCode, b)
	}
	// Parquet is for a synthetic release's rows (synthetic_test.go), not a query's.
	resp, b = ts.call(t, "rita", "GET", "/v1/projects/wl/releases/"+q.ReleaseID, nil, "Accept", "application/vnd.apache.parquet")
	if p := problemOf(t, resp, b); resp.StatusCode != 406 || !strings.Contains(p.Detail, "synthetic releases") {
		t.Errorf("a query's release as Parquet: %d %s", resp.StatusCode, p.Detail)
	}
	if st := ts.project(t, "wl"); st.Spent.Epsilon != 2 {
		t.Errorf("spent %v after reading the history and the releases, want 2", st.Spent.Epsilon)
	}

	// Who may read what.
	for _, c := range []struct {
		user, path string
		status     int
	}{
		{"otto", "/v1/projects/wl/history", 403},
		{"otto", "/v1/projects/wl/releases/" + q.ReleaseID, 403},
		{"adam", "/v1/projects/wl/history", 403},
		{"dora", "/v1/projects/wl/history", 200},
		{"dora", "/v1/projects/nope/history", 404},
		{"rita", "/v1/projects/wl/releases/" + others.ReleaseID, 404}, // another project's release
		{"rita", "/v1/projects/wl/releases/r_999_abc", 404},
		{"rita", "/v1/projects/wl/releases/nonsense", 404},
		{"rita", "/v1/projects/wl/history?limit=0", 400},
	} {
		resp, b := ts.call(t, c.user, "GET", c.path, nil)
		if resp.StatusCode != c.status {
			t.Errorf("%s GET %s: %d, want %d (%s)", c.user, c.path, resp.StatusCode, c.status, b)
		}
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
