package notebooksapi_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/release"
)

const shareSQL = "SELECT region, priority, AVG(CAST(within_target AS INTEGER)) AS share, COUNT(*) AS bookings FROM booking WHERE first_access GROUP BY region, priority ORDER BY region, priority"

// TestQueryFormats asks one query as JSON, then as CSV and as an Arrow stream (both
// answered from the release cache) and checks all three carry the same release.
func TestQueryFormats(t *testing.T) {
	ts := startServer(t)
	body := map[string]any{"sql": shareSQL, "project": "wl", "epsilon": 1}

	resp, b := ts.call(t, "rita", "POST", "/v1/queries", body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("json: %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var rel release.Release
	mustJSON(t, b, &rel)
	if rel.Cached || rel.Project != "wl" || rel.Epsilon != 1 || len(rel.Rows) != 21*4 || len(rel.CI) != len(rel.Rows) || rel.BudgetLeft.Epsilon != 9 {
		t.Fatalf("release: cached %v project %s epsilon %v rows %d budget left %v", rel.Cached, rel.Project, rel.Epsilon, len(rel.Rows), rel.BudgetLeft)
	}
	// Exactly the JSON that velo query --format json prints: release.Release marshalled.
	var generic map[string]any
	mustJSON(t, b, &generic)
	for _, k := range []string{"release_id", "project", "dataset_version", "cached", "columns", "rows", "ci", "confidence", "epsilon", "delta", "budget_split", "budget_left"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("release lacks %q", k)
		}
	}
	if again, _ := json.Marshal(rel); !jsonEqual(t, again, b) {
		t.Error("the body is not release.Release marshalled")
	}

	// CSV: same release, from the cache.
	resp, b = ts.call(t, "rita", "POST", "/v1/queries", body, "Accept", "text/csv")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var meta []string
	var rest bytes.Buffer
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if strings.HasPrefix(line, "# ") {
			meta = append(meta, strings.TrimSpace(line))
		} else {
			rest.WriteString(line)
		}
	}
	for _, want := range []string{"# release_id: " + rel.ReleaseID, "# cached: true", "# epsilon: 1", "# project: wl"} {
		if !contains(meta, want) {
			t.Errorf("csv metadata lacks %q: %q", want, meta)
		}
	}
	recs, err := csv.NewReader(&rest).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := []string{"region", "priority", "share", "share_ci_lower", "share_ci_upper", "share_flags", "bookings", "bookings_ci_lower", "bookings_ci_upper", "bookings_flags"}
	if diff := cmp.Diff(wantHeader, recs[0]); diff != "" {
		t.Errorf("csv header (-want +got):\n%s", diff)
	}
	if len(recs)-1 != len(rel.Rows) {
		t.Fatalf("csv has %d rows, json %d", len(recs)-1, len(rel.Rows))
	}
	for i, row := range rel.Rows {
		r := recs[i+1]
		if r[0] != row[0] || r[1] != row[1] || !sameNum(t, r[2], row[2]) || !sameNum(t, r[6], row[3]) {
			t.Fatalf("csv row %d %q differs from json %v", i, r, row)
		}
		lo, hi := ciOf(rel.CI[i][3])
		if !sameNum(t, r[7], lo) || !sameNum(t, r[8], hi) {
			t.Fatalf("csv row %d interval %q differs from json %v", i, r[7:9], rel.CI[i][3])
		}
		if r[5] != strings.Join(rel.FlagsOf(i, 2), " ") || r[9] != strings.Join(rel.FlagsOf(i, 3), " ") {
			t.Fatalf("csv row %d flags %q, %q differ from json %v, %v", i, r[5], r[9], rel.FlagsOf(i, 2), rel.FlagsOf(i, 3))
		}
	}

	// Arrow IPC stream: decoded and compared with the JSON release.
	resp, b = ts.call(t, "rita", "POST", "/v1/queries", body, "Accept", "application/vnd.apache.arrow.stream")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.apache.arrow.stream" {
		t.Fatalf("arrow: %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	compareArrow(t, b, rel)

	// One charge for the three answers.
	if st := ts.project(t, "wl"); st.Spent.Epsilon != 1 || st.Queries != 1 {
		t.Errorf("spent %v in %d queries, want 1 in 1", st.Spent.Epsilon, st.Queries)
	}

	// A format Velo cannot send is refused before anything is charged.
	resp, b = ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl"}, "Accept", "application/xml")
	if p := problemOf(t, resp, b); p.Status != 406 || p.Code != "not_acceptable" {
		t.Errorf("xml: %+v", p)
	}
	resp, b = ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl"}, "Accept", "text/csv;q=0.5, application/vnd.apache.arrow.stream;q=0.9")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.apache.arrow.stream" {
		t.Errorf("q-values: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if st := ts.project(t, "wl"); st.Queries != 2 {
		t.Errorf("%d queries charged, want 2 (the 406 must not be charged)", st.Queries)
	}

	// A dry run prices without charging.
	resp, b = ts.call(t, "grafana", "POST", "/v1/queries", map[string]any{"sql": shareSQL, "project": "wl", "epsilon": 0.25, "dry_run": true})
	var dry release.Release
	mustJSON(t, b, &dry)
	if resp.StatusCode != 200 || !dry.DryRun || dry.Epsilon != 0.25 || len(dry.Rows) != 0 || len(dry.BudgetSplit) == 0 {
		t.Errorf("dry run: %d %s", resp.StatusCode, b)
	}
	if st := ts.project(t, "wl"); st.Queries != 2 {
		t.Errorf("a dry run was charged")
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	var x, y any
	mustJSON(t, a, &x)
	mustJSON(t, b, &y)
	return cmp.Equal(x, y)
}

func ciOf(v any) (any, any) {
	if p, ok := v.([]any); ok && len(p) == 2 {
		return p[0], p[1]
	}
	return nil, nil
}

func sameNum(t *testing.T, s string, v any) bool {
	t.Helper()
	if v == nil {
		return s == ""
	}
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f == v.(float64)
}

// compareArrow decodes an Arrow IPC stream with arrow-go's reader and checks it against
// the JSON release: columns, every value and interval, and the metadata.
func compareArrow(t *testing.T, b []byte, rel release.Release) {
	t.Helper()
	rd, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	schema := rd.Schema()
	md := schema.Metadata()
	for k, want := range map[string]string{
		"velo.release_id": rel.ReleaseID, "velo.project": "wl", "velo.dataset_version": rel.DatasetVersion, "velo.cached": "true",
		"velo.epsilon": "1", "velo.delta": "0", "velo.confidence": "0.95", "velo.sql": rel.SQL,
	} {
		if i := md.FindKey(k); i < 0 || md.Values()[i] != want {
			t.Errorf("arrow metadata %s: want %q", k, want)
		}
	}
	var split []release.SplitEntry
	if i := md.FindKey("velo.budget_split"); i >= 0 {
		mustJSON(t, []byte(md.Values()[i]), &split)
	}
	if diff := cmp.Diff(rel.BudgetSplit, split); diff != "" {
		t.Errorf("arrow budget_split (-json +arrow):\n%s", diff)
	}
	var names []string
	for _, f := range schema.Fields() {
		names = append(names, f.Name)
	}
	if diff := cmp.Diff([]string{"region", "priority", "share", "share_ci_lower", "share_ci_upper", "share_flags", "bookings", "bookings_ci_lower", "bookings_ci_upper", "bookings_flags"}, names); diff != "" {
		t.Fatalf("arrow columns (-want +got):\n%s", diff)
	}
	if schema.Field(0).Type.ID() != arrow.STRING || schema.Field(2).Type.ID() != arrow.FLOAT64 {
		t.Errorf("arrow types: %v", schema)
	}
	row := 0
	for rd.Next() {
		rec := rd.RecordBatch()
		region := rec.Column(0).(*array.String)
		prio := rec.Column(1).(*array.String)
		share := rec.Column(2).(*array.Float64)
		lo, hi := rec.Column(7).(*array.Float64), rec.Column(8).(*array.Float64)
		n := rec.Column(6).(*array.Float64)
		shareFlags := rec.Column(5).(*array.String)
		for i := 0; i < int(rec.NumRows()); i, row = i+1, row+1 {
			want := rel.Rows[row]
			if region.Value(i) != want[0] || prio.Value(i) != want[1] || share.Value(i) != want[2] || n.Value(i) != want[3] {
				t.Fatalf("arrow row %d: %s %s %v %v, json %v", row, region.Value(i), prio.Value(i), share.Value(i), n.Value(i), want)
			}
			wlo, whi := ciOf(rel.CI[row][3])
			if lo.IsNull(i) || lo.Value(i) != wlo || hi.Value(i) != whi {
				t.Fatalf("arrow row %d interval [%v %v], json %v", row, lo.Value(i), hi.Value(i), rel.CI[row][3])
			}
			if f := strings.Join(rel.FlagsOf(row, 2), " "); shareFlags.IsNull(i) != (f == "") || shareFlags.Value(i) != f {
				t.Fatalf("arrow row %d share flags %q, json %q", row, shareFlags.Value(i), f)
			}
		}
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	if row != len(rel.Rows) {
		t.Errorf("arrow has %d rows, json %d", row, len(rel.Rows))
	}
}

// TestArrowTypes checks date and numeric keys and a quantile's interval.
func TestArrowTypes(t *testing.T) {
	ts := startServer(t)
	sql := "SELECT date_trunc('month', d_contact) AS month, year(d_contact) AS y, MEDIAN(wait_days) AS median_wait FROM booking GROUP BY month, y ORDER BY month, y LIMIT 5"
	body := map[string]any{"sql": sql, "project": "wl", "epsilon": 1}
	resp, b := ts.call(t, "rita", "POST", "/v1/queries", body)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var rel release.Release
	mustJSON(t, b, &rel)
	resp, b = ts.call(t, "rita", "POST", "/v1/queries", body, "Accept", "application/vnd.apache.arrow.stream")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	rd, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	if !rd.Next() {
		t.Fatal("no record batch")
	}
	rec := rd.RecordBatch()
	months, ok := rec.Column(0).(*array.Date32)
	if !ok {
		t.Fatalf("month is %T, want Date32 (columns %v)", rec.Column(0), rel.Columns)
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		if got := months.Value(i).ToTime().Format(time.DateOnly); got != rel.Rows[i][0] {
			t.Errorf("row %d month %s, json %v", i, got, rel.Rows[i][0])
		}
		if y := rec.Column(1).(*array.Float64).Value(i); y != rel.Rows[i][1] {
			t.Errorf("row %d year %v, json %v", i, y, rel.Rows[i][1])
		}
		if v := rec.Column(2).(*array.Float64).Value(i); v != rel.Rows[i][2] {
			t.Errorf("row %d median %v, json %v", i, v, rel.Rows[i][2])
		}
		// A median's interval (read off the same noisy tree) is in the arrow columns too.
		lo, hi := ciOf(rel.CI[i][2])
		if rec.Column(3).IsNull(i) || rec.Column(3).(*array.Float64).Value(i) != lo || rec.Column(4).(*array.Float64).Value(i) != hi {
			t.Errorf("row %d: median interval [%v, %v] in arrow, json %v", i, rec.Column(3).(*array.Float64).Value(i), rec.Column(4).(*array.Float64).Value(i), rel.CI[i][2])
		}
	}
}

// TestRoles walks each role's allowed and refused actions.
func TestRoles(t *testing.T) {
	ts := startServer(t)
	q := func(project string) map[string]any {
		return map[string]any{"sql": "SELECT region, COUNT(*) AS n FROM booking GROUP BY region", "project": project, "epsilon": 0.1}
	}
	newProject := map[string]any{"id": "p2", "purpose": "a new study", "legal_basis": "art. 9(2)(j) GDPR", "allow": map[string][]string{"booking": {"region"}}, "epsilon_budget": 2, "delta_budget": 0}
	cases := []struct {
		name, user, method, path string
		body                     any
		status                   int
		code                     string
	}{
		{"no token", "", "GET", "/v1/projects", nil, 401, "unauthorized"},
		{"wrong token", "velo_not-a-token", "GET", "/v1/projects", nil, 401, "unauthorized"},
		{"wrong token query", "velo_not-a-token", "POST", "/v1/queries", q("wl"), 401, "unauthorized"},
		{"researcher queries own project", "rita", "POST", "/v1/queries", q("wl"), 200, ""},
		{"researcher on another project", "rita", "POST", "/v1/queries", q("other"), 403, "forbidden"},
		{"researcher on an unknown project", "rita", "POST", "/v1/queries", q("nope"), 403, "forbidden"},
		{"researcher column not approved", "otto", "POST", "/v1/queries", map[string]any{"sql": "SELECT priority, COUNT(*) AS n FROM booking GROUP BY priority", "project": "other", "epsilon": 0.1}, 403, "forbidden"},
		{"official queries its dashboard project", "grafana", "POST", "/v1/queries", map[string]any{"sql": "SELECT priority, COUNT(*) AS n FROM booking GROUP BY priority", "project": "wl", "epsilon": 0.1}, 200, ""},
		{"dpo cannot query", "dora", "POST", "/v1/queries", q("wl"), 403, "forbidden"},
		{"admin cannot query", "adam", "POST", "/v1/queries", q("wl"), 403, "forbidden"},
		{"researcher reads own project", "rita", "GET", "/v1/projects/wl", nil, 200, ""},
		{"researcher reads another project", "rita", "GET", "/v1/projects/other", nil, 403, "forbidden"},
		{"researcher reads an unknown project", "rita", "GET", "/v1/projects/nope", nil, 403, "forbidden"},
		{"dpo reads any project", "dora", "GET", "/v1/projects/other", nil, 200, ""},
		{"dpo reads an unknown project", "dora", "GET", "/v1/projects/nope", nil, 404, "not_found"},
		{"admin reads no project", "adam", "GET", "/v1/projects/wl", nil, 403, "forbidden"},
		{"admin lists no projects", "adam", "GET", "/v1/projects", nil, 403, "forbidden"},
		{"admin reads no catalog", "adam", "GET", "/v1/catalog", nil, 403, "forbidden"},
		{"researcher catalog of another project", "rita", "GET", "/v1/catalog?project=other", nil, 403, "forbidden"},
		{"researcher ledger", "rita", "GET", "/v1/ledger", nil, 403, "forbidden"},
		{"official ledger", "grafana", "GET", "/v1/ledger", nil, 403, "forbidden"},
		{"researcher verify", "rita", "GET", "/v1/ledger/verify", nil, 403, "forbidden"},
		{"admin ledger", "adam", "GET", "/v1/ledger", nil, 403, "forbidden"},
		{"dpo ledger", "dora", "GET", "/v1/ledger", nil, 200, ""},
		{"dpo ledger of a project", "dora", "GET", "/v1/ledger?project=wl&since_seq=1&limit=2", nil, 200, ""},
		{"dpo ledger of an unknown project", "dora", "GET", "/v1/ledger?project=nope", nil, 404, "not_found"},
		{"dpo ledger bad since_seq", "dora", "GET", "/v1/ledger?since_seq=x", nil, 400, "invalid_request"},
		{"dpo verify", "dora", "GET", "/v1/ledger/verify", nil, 200, ""},
		{"researcher creates a project", "rita", "POST", "/v1/projects", newProject, 403, "forbidden"},
		{"admin creates a project", "adam", "POST", "/v1/projects", newProject, 403, "forbidden"},
		{"dpo creates a project", "dora", "POST", "/v1/projects", newProject, 201, ""},
		{"dpo creates it again", "dora", "POST", "/v1/projects", newProject, 409, "project_exists"},
		{"dpo creates an invalid project", "dora", "POST", "/v1/projects", map[string]any{"id": "p3", "legal_basis": "x", "allow": map[string][]string{"booking": nil}, "epsilon_budget": 1, "delta_budget": 0}, 400, "invalid_request"},
		{"researcher grants", "rita", "POST", "/v1/projects/wl/grants", map[string]any{"epsilon": 1}, 403, "forbidden"},
		{"dpo grants", "dora", "POST", "/v1/projects/wl/grants", map[string]any{"epsilon": 1.5, "reason": "phase 2"}, 200, ""},
		{"dpo grants nothing", "dora", "POST", "/v1/projects/wl/grants", map[string]any{}, 400, "invalid_request"},
		{"dpo grants to an unknown project", "dora", "POST", "/v1/projects/nope/grants", map[string]any{"epsilon": 1}, 404, "not_found"},
		{"researcher login code", "rita", "POST", "/v1/login-codes", nil, 403, "forbidden"},
		{"dpo login code", "dora", "POST", "/v1/login-codes", nil, 201, ""},
		{"anyone: me", "adam", "GET", "/v1/me", nil, 200, ""},
		{"me without token", "", "GET", "/v1/me", nil, 401, "unauthorized"},
		{"healthz without token", "", "GET", "/healthz", nil, 200, ""},
		{"metrics without token", "", "GET", "/metrics", nil, 200, ""},
		{"openapi without token", "", "GET", "/openapi.json", nil, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, b := ts.call(t, c.user, c.method, c.path, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("%s %s as %q: %d, want %d: %s", c.method, c.path, c.user, resp.StatusCode, c.status, b)
			}
			if c.code != "" {
				if p := problemOf(t, resp, b); p.Code != c.code {
					t.Errorf("code %q, want %q (%s)", p.Code, c.code, p.Detail)
				}
			}
			if c.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if st := ts.project(t, "wl"); st.Total.Epsilon != 11.5 || st.Queries != 2 {
		t.Errorf("wl: total %v, %d queries; want 11.5 after the grant, 2 queries", st.Total.Epsilon, st.Queries)
	}
	if _, err := ts.Ledger.Project("p2"); err != nil {
		t.Errorf("p2 was not created: %v", err)
	}
	var entries []ledger.Entry
	for _, e := range ts.Ledger.Entries("", 0) {
		if e.Kind == ledger.KindCharge {
			entries = append(entries, e)
		}
	}
	if len(entries) != 2 || entries[0].Actor != "user:rita" || entries[1].Actor != "user:grafana" {
		t.Errorf("charges by %v, want user:rita and user:grafana", entries)
	}
}

// TestResources checks the bodies of the read endpoints for each role.
func TestResources(t *testing.T) {
	ts := startServer(t)
	var list struct{ Projects []ledger.ProjectStatus }
	_, b := ts.call(t, "rita", "GET", "/v1/projects", nil)
	mustJSON(t, b, &list)
	if got := ids(list.Projects); !cmp.Equal(got, []string{"small", "wl"}) {
		t.Errorf("rita sees projects %v", got)
	}
	_, b = ts.call(t, "dora", "GET", "/v1/projects", nil)
	mustJSON(t, b, &list)
	if got := ids(list.Projects); !cmp.Equal(got, []string{"other", "small", "wl"}) {
		t.Errorf("dora sees projects %v", got)
	}
	var st ledger.ProjectStatus
	_, b = ts.call(t, "grafana", "GET", "/v1/projects/wl", nil)
	mustJSON(t, b, &st)
	if st.Purpose != "waiting-list reduction, region by region" || st.Total.Epsilon != 10 || st.Left.Epsilon != 10 || st.Spent.Epsilon != 0 {
		t.Errorf("project wl: %+v", st)
	}

	// Catalog: otto's project may read two booking columns; rita's wl booking and three person columns.
	var cat dataset.Catalog
	_, b = ts.call(t, "otto", "GET", "/v1/catalog", nil)
	mustJSON(t, b, &cat)
	if got := catalogColumns(cat); !cmp.Equal(got, []string{"booking.region", "booking.wait_days"}) {
		t.Errorf("otto's catalog: %v", got)
	}
	if _, ok := cat.Domains["region"]; !ok || len(cat.Domains) != 1 {
		t.Errorf("otto's catalog domains: %v", cat.Domains)
	}
	_, b = ts.call(t, "rita", "GET", "/v1/catalog?project=wl", nil)
	mustJSON(t, b, &cat)
	cols := catalogColumns(cat)
	if !contains(cols, "person.birth_year") || contains(cols, "person.comune") || !contains(cols, "booking.priority") {
		t.Errorf("rita's wl catalog: %v", cols)
	}
	_, b = ts.call(t, "dora", "GET", "/v1/catalog", nil)
	mustJSON(t, b, &cat)
	if len(cat.Tables) < 5 {
		t.Errorf("the dpo's catalog has %d tables", len(cat.Tables))
	}

	var me notebooksapi.Me
	_, b = ts.call(t, "grafana", "GET", "/v1/me", nil)
	mustJSON(t, b, &me)
	if me.User != "grafana" || me.Role != notebooksapi.RoleOfficial || !cmp.Equal(me.Projects, []string{"wl"}) {
		t.Errorf("me: %+v", me)
	}

	// The ledger, paged.
	for i := 0; i < 3; i++ {
		resp, b := ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"sql": "SELECT region, COUNT(*) AS n FROM booking WHERE wait_days > " + itoa(i) + " GROUP BY region", "project": "wl"})
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	}
	var page notebooksapi.LedgerPage
	_, b = ts.call(t, "dora", "GET", "/v1/ledger?project=wl&limit=3", nil)
	mustJSON(t, b, &page)
	if len(page.Entries) != 3 || !page.More || page.Entries[0].Kind != "project" || page.NextSinceSeq != page.Entries[2].Seq {
		t.Fatalf("first page: %+v", page)
	}
	_, b = ts.call(t, "dora", "GET", "/v1/ledger?project=wl&since_seq="+strconv.FormatUint(page.NextSinceSeq, 10), nil)
	var page2 notebooksapi.LedgerPage
	mustJSON(t, b, &page2)
	if len(page2.Entries) != 4 || page2.More || page2.Entries[len(page2.Entries)-1].Kind != "release" {
		t.Errorf("second page: %d entries, more %v", len(page2.Entries), page2.More)
	}
	for _, e := range append(page.Entries, page2.Entries...) {
		if e.Project != "wl" {
			t.Errorf("entry %d of project %s", e.Seq, e.Project)
		}
		if e.Kind == "charge" && (e.SQL == "" || e.Actor != "user:rita" || e.Epsilon != 0.5) {
			t.Errorf("charge %+v", e)
		}
	}

	var v notebooksapi.VerifyResult
	_, b = ts.call(t, "dora", "GET", "/v1/ledger/verify", nil)
	mustJSON(t, b, &v)
	if !v.OK || v.Entries != 3+6 || v.Kinds["charge"] != 3 || v.Anomaly != nil || len(v.Projects) != 3 {
		t.Errorf("verify: %+v", v)
	}
}

func ids(ps []ledger.ProjectStatus) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func catalogColumns(c dataset.Catalog) []string {
	var out []string
	for _, t := range c.Tables {
		for _, col := range t.Columns {
			out = append(out, t.Name+"."+col.Name)
		}
	}
	return out
}

// TestProblems checks the problem+json answers: stable codes, SQL positions, fields, and
// no database text.
func TestProblems(t *testing.T) {
	ts := startServer(t)
	cases := []struct {
		name     string
		body     any
		header   []string
		status   int
		code     string
		field    string
		position int // -1: none
	}{
		{"identifier selected", map[string]any{"sql": "SELECT pid FROM booking", "project": "wl"}, nil, 400, "sql_rejected", "", 7},
		{"table function", map[string]any{"sql": "SELECT COUNT(*) AS n FROM read_csv('/etc/passwd')", "project": "wl"}, nil, 400, "sql_rejected", "", -2},
		{"two statements", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking; SELECT 1", "project": "wl"}, nil, 400, "sql_rejected", "", -2},
		{"parse error", map[string]any{"sql": "SELEC region FROM booking WHERE 'Mario Rossi' = x", "project": "wl"}, nil, 400, "sql_rejected", "", -2},
		{"epsilon over the cap", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl", "epsilon": 3}, nil, 400, "invalid_options", "", -1},
		{"bounds for a count", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl", "bounds": map[string][]float64{"n": {0, 1}}}, nil, 400, "invalid_options", "", -1},
		{"no sql", map[string]any{"project": "wl"}, nil, 400, "invalid_request", "sql", -1},
		{"no project", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking"}, nil, 400, "invalid_request", "project", -1},
		{"unknown field", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl", "epsilonn": 1}, nil, 400, "invalid_request", "epsilonn", -1},
		{"wrong type", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl", "epsilon": "1"}, nil, 400, "invalid_request", "epsilon", -1},
		{"not json", "{sql:", nil, 400, "invalid_request", "", -1},
		{"empty body", "", nil, 400, "invalid_request", "", -1},
		{"too large", `{"sql": "` + strings.Repeat("x", 70<<10) + `"}`, nil, 413, "request_too_large", "", -1},
		{"form encoded", "sql=x", []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", "", -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, b := ts.call(t, "rita", "POST", "/v1/queries", c.body, c.header...)
			p := problemOf(t, resp, b)
			if p.Status != c.status || p.Code != c.code || p.Field != c.field {
				t.Fatalf("%d %s field %q, want %d %s field %q: %s", p.Status, p.Code, p.Field, c.status, c.code, c.field, p.Detail)
			}
			switch {
			case c.position >= 0 && (p.Position == nil || *p.Position != c.position):
				t.Errorf("position %v, want %d", p.Position, c.position)
			case c.position == -1 && p.Position != nil:
				t.Errorf("position %d, want none", *p.Position)
			}
			for _, leak := range []string{"Parser Error", "Binder Error", "Catalog Error", "Mario Rossi", "passwd", "duckdb", "DuckDB"} {
				if strings.Contains(string(b), leak) {
					t.Errorf("the problem quotes %q: %s", leak, b)
				}
			}
		})
	}
	if st := ts.project(t, "wl"); st.Queries != 0 {
		t.Errorf("refused queries were charged: %d", st.Queries)
	}

	// The budget runs out: small has epsilon 1.
	resp, b := ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "small", "epsilon": 1})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	resp, b = ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"sql": "SELECT COUNT(*) AS m FROM booking", "project": "small", "epsilon": 0.01})
	// The refusal gives the numbers and says how the budget grows.
	p := problemOf(t, resp, b)
	wantBudget := notebooksapi.BudgetRefusal{Project: "small", Asked: ledger.Budget{Epsilon: 0.01}, Total: ledger.Budget{Epsilon: 1},
		Spent: ledger.Budget{Epsilon: 1}, Left: ledger.Budget{}}
	if p.Status != 409 || p.Code != "budget_exhausted" || p.Budget == nil || *p.Budget != wantBudget {
		t.Errorf("budget: %+v, budget %+v; want %+v", p, p.Budget, wantBudget)
	}
	for _, want := range []string{"asks for epsilon 0.01 and delta 0", "project small has epsilon 0 and delta 0 left", "of epsilon 1 and delta 0; epsilon 1 and delta 0 spent",
		"POST /v1/projects/small/grants", "velo project grant --state STATE --id small --epsilon E", "release cache at no cost"} {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("budget_exhausted detail lacks %q: %s", want, p.Detail)
		}
	}
	// The same query as the first is still answered, from the cache, at no cost.
	resp, b = ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "small", "epsilon": 1})
	var rel release.Release
	mustJSON(t, b, &rel)
	if resp.StatusCode != 200 || !rel.Cached || rel.BudgetLeft.Epsilon != 0 {
		t.Errorf("cached after exhaustion: %d %s", resp.StatusCode, b)
	}

	// Routes and methods that do not exist.
	resp, b = ts.call(t, "rita", "GET", "/v1/nothing", nil)
	if p := problemOf(t, resp, b); p.Status != 404 || p.Code != "not_found" {
		t.Errorf("unknown route: %+v", p)
	}
	resp, b = ts.call(t, "rita", "DELETE", "/v1/projects/wl", nil)
	if p := problemOf(t, resp, b); p.Status != 405 || p.Code != "method_not_allowed" || resp.Header.Get("Allow") != "GET" {
		t.Errorf("wrong method: %+v, Allow %q", p, resp.Header.Get("Allow"))
	}
	resp, _ = ts.call(t, "rita", "GET", "/v1/queries", nil)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET /v1/queries: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// gatedLedger holds every query the engine charges until its gate opens: the query then
// holds its engine slot, as a long query does.
type gatedLedger struct {
	query.Ledger
	entered chan struct{}
	gate    chan struct{}
	free    string // SQL text (as sent) that passes without waiting
}

func (g *gatedLedger) Charge(ctx context.Context, req ledger.ChargeRequest) (ledger.Charge, error) {
	if req.Text != g.free {
		g.entered <- struct{}{}
		<-g.gate
	}
	return g.Ledger.Charge(ctx, req)
}

func gate(g **gatedLedger, limits notebooksapi.Limits, free string) serverOption {
	return func(o *serverSetup) {
		o.Limits = limits
		o.engineLedger = func(l query.Ledger) query.Ledger {
			*g = &gatedLedger{Ledger: l, entered: make(chan struct{}, 16), gate: make(chan struct{}), free: free}
			return *g
		}
	}
}

// TestConcurrencyLimit fills the engine's query slots and checks the next query gets a 429
// with Retry-After, is not charged, and that the held queries then complete.
func TestConcurrencyLimit(t *testing.T) {
	var g *gatedLedger
	ts := startServer(t, gate(&g, notebooksapi.Limits{MaxConcurrentQueries: 2, QueueTimeout: 50 * time.Millisecond}, shareSQL))
	primed := map[string]any{"sql": shareSQL, "project": "wl", "epsilon": 0.5}
	if resp, b := ts.call(t, "rita", "POST", "/v1/queries", primed); resp.StatusCode != 200 {
		t.Fatalf("priming query: %d %s", resp.StatusCode, b)
	}
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"sql": "SELECT region, COUNT(*) AS n FROM booking WHERE wait_days > " + itoa(i) + " GROUP BY region", "project": "wl"})
			statuses[i] = resp.StatusCode
		}()
	}
	<-g.entered
	<-g.entered
	resp, b := ts.call(t, "grafana", "POST", "/v1/queries", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl"})
	p := problemOf(t, resp, b)
	if p.Status != 429 || p.Code != "too_many_queries" || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("third query: %+v, Retry-After %q", p, resp.Header.Get("Retry-After"))
	}
	// A query answered before comes from the release cache and needs no slot.
	if resp, b := ts.call(t, "grafana", "POST", "/v1/queries", primed); resp.StatusCode != 200 {
		t.Errorf("cached query with every slot taken: %d %s", resp.StatusCode, b)
	}
	close(g.gate)
	wg.Wait()
	if !cmp.Equal(statuses, []int{200, 200}) {
		t.Errorf("held queries: %v", statuses)
	}
	if st := ts.project(t, "wl"); st.Queries != 3 || st.Spent.Epsilon != 1.5 {
		t.Errorf("%d queries, epsilon %v spent; want 3 and 1.5 (the 429 and the cached answer are free)", st.Queries, st.Spent.Epsilon)
	}
	_, m := ts.call(t, "dora", "GET", "/metrics", nil)
	for _, want := range []string{`velo_query_refusals_total{code="too_many_queries"} 1`, `velo_queries_total{outcome="released"} 3`, `velo_queries_total{outcome="cached"} 1`, "velo_epsilon_spent_total 1.5", "velo_query_duration_seconds_count 4", `velo_query_slots 2`, `velo_project_epsilon_spent{project="wl"} 1.5`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("the DPO's metrics lack %q", want)
		}
	}
}

// /metrics without a token shows the process's health only; query outcomes need an
// operator's (admin) or DPO's token, and epsilon figures, in total or per project, the
// DPO's. A wrong token is refused, not downgraded.
func TestMetricsPrivacyFigures(t *testing.T) {
	ts := startServer(t)
	if resp, b := ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl", "epsilon": 0.5}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	outcomes, epsilon, perProject := "velo_queries_total{", "velo_epsilon_spent_total", `velo_project_epsilon_spent{project="wl"} 0.5`
	for _, tt := range []struct {
		user                 string
		outcomes, eps, projs bool
	}{
		{"", false, false, false},
		{"rita", false, false, false},
		{"grafana", false, false, false},
		{"adam", true, false, false},
		{"dora", true, true, true},
	} {
		resp, m := ts.call(t, tt.user, "GET", "/metrics", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(m), "velo_http_requests_total{") {
			t.Fatalf("%q: %d %s", tt.user, resp.StatusCode, m)
		}
		for _, c := range []struct {
			what string
			want bool
		}{{outcomes, tt.outcomes}, {epsilon, tt.eps}, {perProject, tt.projs}, {`project="`, tt.projs}} {
			if strings.Contains(string(m), c.what) != c.want {
				t.Errorf("token of %q: metrics contain %q: %v, want %v", tt.user, c.what, !c.want, c.want)
			}
		}
	}
	resp, b := ts.call(t, "not-a-token", "GET", "/metrics", nil)
	if p := problemOf(t, resp, b); p.Status != 401 {
		t.Errorf("metrics with a wrong token: %+v", p)
	}
}

// Request bodies are decoded strictly: exact field names (encoding/json alone matches
// them case-insensitively, so "Epsilon": 2 beside "epsilon": 0.3 won) and no duplicate
// keys, at any depth. Nothing is charged for a refused body.
func TestStrictJSONBodies(t *testing.T) {
	ts := startServer(t)
	for _, tt := range []struct {
		name, body, field, detail string
	}{
		{"case-insensitive name", `{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl", "epsilon": 0.3, "Epsilon": 2}`, "Epsilon", `did you mean "epsilon"`},
		{"only the wrong case", `{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl", "EPSILON": 2}`, "EPSILON", "case-sensitive"},
		{"duplicate key", `{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl", "epsilon": 0.3, "epsilon": 2}`, "epsilon", "given twice"},
		{"duplicate sql", `{"sql": "SELECT COUNT(*) AS n FROM booking WHERE wait_days > 300", "project": "wl", "sql": "SELECT COUNT(*) AS n FROM booking"}`, "sql", "given twice"},
		{"duplicate nested key", `{"sql": "SELECT AVG(wait_days) AS a FROM booking", "project": "wl", "bounds": {"a": [0, 10], "a": [0, 1000]}}`, "bounds.a", "given twice"},
		{"unknown field", `{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl", "epsilonn": 2}`, "epsilonn", "unknown field"},
		// Type mismatches say what the field must be, in JSON's words, not Go's.
		{"epsilon as a string", `{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl", "epsilon": "0.5"}`, "epsilon", `epsilon must be a number, got a string: write the number without quotes ("epsilon": 0.5, not "0.5")`},
		{"delta as a boolean", `{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl", "delta": true}`, "delta", "delta must be a number, got true or false"},
		{"max groups not whole", `{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl", "max_groups_contributed": 2.5}`, "max_groups_contributed", "max_groups_contributed must be an integer, got 2.5"},
		{"bounds as a number", `{"sql": "SELECT AVG(wait_days) AS a FROM booking", "project": "wl", "bounds": {"a": 10}}`, "bounds", `each entry of bounds must be an array of 2 numbers ({"avg_wait": [0, 365]}), got a number`},
		{"sql as an array", `{"sql": ["SELECT 1"], "project": "wl"}`, "sql", "sql must be a string, got an array"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := ts.call(t, "rita", "POST", "/v1/queries", tt.body)
			p := problemOf(t, resp, b)
			if p.Status != 400 || p.Code != "invalid_request" || p.Field != tt.field || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("%+v, want 400 invalid_request on field %q saying %q", p, tt.field, tt.detail)
			}
		})
	}
	if st := ts.project(t, "wl"); st.Queries != 0 {
		t.Errorf("refused bodies made %d charges", st.Queries)
	}
}

// TestIdenticalQueriesAtOnce sends the same query from two clients at once: it is
// charged once, and both get the same release.
func TestIdenticalQueriesAtOnce(t *testing.T) {
	ts := startServer(t)
	body := map[string]any{"sql": shareSQL, "project": "wl", "epsilon": 1}
	var wg sync.WaitGroup
	rels := make([]release.Release, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := []string{"rita", "grafana"}[i]
			resp, b := ts.call(t, user, "POST", "/v1/queries", body)
			if resp.StatusCode != 200 {
				t.Errorf("%d %s", resp.StatusCode, b)
				return
			}
			mustJSON(t, b, &rels[i])
		}()
	}
	wg.Wait()
	if rels[0].ReleaseID != rels[1].ReleaseID || rels[0].Cached == rels[1].Cached {
		t.Errorf("releases %s (cached %v) and %s (cached %v)", rels[0].ReleaseID, rels[0].Cached, rels[1].ReleaseID, rels[1].Cached)
	}
	if st := ts.project(t, "wl"); st.Queries != 1 {
		t.Errorf("%d charges, want 1", st.Queries)
	}
}

// TestGracefulShutdown stops the server while a query runs: the query completes, the
// server stops accepting, and the ledger closes with the charge settled.
func TestGracefulShutdown(t *testing.T) {
	var g *gatedLedger
	ts := startServer(t, gate(&g, notebooksapi.Limits{MaxConcurrentQueries: 4, ShutdownTimeout: 30 * time.Second}, ""))
	res := make(chan int, 1)
	go func() {
		resp, _ := ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl"})
		res <- resp.StatusCode
	}()
	<-g.entered
	stopped := make(chan error, 1)
	go func() { stopped <- ts.stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("the server stopped with a query in flight: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(g.gate)
	if code := <-res; code != 200 {
		t.Errorf("the query in flight got %d", code)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(ts.URL + "/healthz"); err == nil {
		t.Error("the server still accepts connections")
	}
	// Closed cleanly: a checkpoint covers every entry, and the charge has its release.
	rep, err := ledger.Verify(ts.State, ledger.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Signed != uint64(rep.Entries) || rep.Kinds["release"] != 1 {
		t.Errorf("after shutdown: %d entries, %d signed, kinds %v", rep.Entries, rep.Signed, rep.Kinds)
	}
}

func TestNegotiate(t *testing.T) {
	ts := startServer(t)
	for accept, want := range map[string]string{
		"":                                     "application/json",
		"*/*":                                  "application/json",
		"text/*":                               "text/csv; charset=utf-8",
		"application/json;q=0.1, text/csv":     "text/csv; charset=utf-8",
		"application/vnd.apache.arrow.stream":  "application/vnd.apache.arrow.stream",
		"text/html, application/json;q=0.9":    "application/json",
		"application/json;q=0, text/csv;q=0.0": "",
	} {
		resp, b := ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "wl", "dry_run": true}, "Accept", accept)
		got := resp.Header.Get("Content-Type")
		if want == "" {
			if resp.StatusCode != 406 {
				t.Errorf("Accept %q: %d, want 406", accept, resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != 200 || got != want {
			t.Errorf("Accept %q: %d %q, want %q: %s", accept, resp.StatusCode, got, want, b)
		}
	}
}
