package notebooksapi_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/query"
)

func charges(ts *testServer, project string) int {
	n := 0
	for _, e := range ts.Ledger.Entries(project, 0) {
		if e.Kind == ledger.KindCharge {
			n++
		}
	}
	return n
}

// POST /v1/marginals over loopback: a dry run, uncharged; JSON, then the same request as
// CSV, Arrow and Parquet, answered by the same release at no further charge; refusals
// uncharged.
func TestMarginalsEndpoint(t *testing.T) {
	ts := startServer(t)
	body := notebooksapi.MarginalsRequest{Project: "wl", Table: "booking", Marginals: [][]string{{"region"}, {"priority", "wait_days"}},
		Epsilon: f64p(1), Delta: f64p(1e-6)}
	// A dry run first: priced, each table's noise, no cells, nothing charged.
	dryBody := body
	dryBody.DryRun = true
	resp, b := ts.call(t, "rita", "POST", "/v1/marginals", dryBody)
	if resp.StatusCode != 200 {
		t.Fatalf("dry run: %d: %s", resp.StatusCode, b)
	}
	var dry query.MarginalsRelease
	mustJSON(t, b, &dry)
	if !dry.DryRun || len(dry.Tables) != 2 || len(dry.Tables[0].Cells) != 0 || dry.Tables[0].CIHalfWidth <= 0 || charges(ts, "wl") != 0 {
		t.Fatalf("dry run: %s; %d charges", b, charges(ts, "wl"))
	}
	resp, b = ts.call(t, "rita", "POST", "/v1/marginals", body)
	if resp.StatusCode != 200 {
		t.Fatalf("%d: %s", resp.StatusCode, b)
	}
	var rel query.MarginalsRelease
	mustJSON(t, b, &rel)
	if len(rel.Tables) != 2 || len(rel.Tables[0].Cells) != 21 || len(rel.Tables[1].Cells) != 40 || rel.ReleaseID == "" || resp.Header.Get("Velo-Release-Id") != rel.ReleaseID {
		t.Fatalf("release %s: %d tables", rel.ReleaseID, len(rel.Tables))
	}
	if charges(ts, "wl") != 1 || ts.project(t, "wl").Spent.Epsilon != 1 {
		t.Errorf("want one charge of epsilon 1")
	}
	resp, b = ts.call(t, "rita", "POST", "/v1/marginals", body, "Accept", "text/csv")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(recs) != 1+21+40 || recs[0][0] != "marginal" || recs[0][7] != "count" {
		t.Fatalf("CSV: %v, %d records, header %v", err, len(recs), recs[0])
	}
	resp, b = ts.call(t, "rita", "POST", "/v1/marginals", body, "Accept", "application/vnd.apache.arrow.stream")
	if resp.StatusCode != 200 {
		t.Fatalf("arrow: %d %s", resp.StatusCode, b)
	}
	rd, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for rd.Next() {
		rows += int(rd.RecordBatch().NumRows())
	}
	md := rd.Schema().Metadata()
	if i := md.FindKey("velo.marginals"); rows != 61 || i < 0 || !strings.Contains(md.Values()[i], `"table":"booking"`) || !strings.Contains(md.Values()[i], `"release_id":"`+rel.ReleaseID+`"`) ||
		!strings.Contains(md.Values()[i], `"cached":true`) || rd.Schema().Field(7).Name != "count" {
		t.Errorf("arrow: %d rows, schema %v", rows, rd.Schema())
	}
	rd.Release()
	resp, b = ts.call(t, "rita", "POST", "/v1/marginals", body, "Accept", "application/vnd.apache.parquet")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.apache.parquet" {
		t.Fatalf("parquet: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	pr, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if kv := pr.MetaData().KeyValueMetadata().FindValue("velo.marginals"); pr.NumRows() != 61 || kv == nil || !strings.Contains(*kv, `"release_id":"`+rel.ReleaseID+`"`) || pr.MetaData().Schema.Column(7).Name() != "count" {
		t.Errorf("parquet: %d rows, metadata %v", pr.NumRows(), kv)
	}
	pr.Close()
	if charges(ts, "wl") != 1 || ts.project(t, "wl").Spent.Epsilon != 1 {
		t.Errorf("the same request in four formats: %d charges, want one", charges(ts, "wl"))
	}
	for _, bad := range []struct {
		user   string
		body   any
		status int
		code   string
	}{
		{"otto", body, 403, "forbidden"},
		{"dora", body, 403, "forbidden"},
		{"rita", notebooksapi.MarginalsRequest{Project: "wl", Table: "booking", Marginals: [][]string{{"provider_id"}}, Epsilon: f64p(1), Delta: f64p(1e-6)}, 400, "sql_rejected"},
		{"rita", notebooksapi.MarginalsRequest{Project: "wl", Table: "booking", Marginals: [][]string{{"region"}}, Epsilon: f64p(1)}, 400, "invalid_options"},
		{"rita", notebooksapi.MarginalsRequest{Project: "wl", Table: "booking"}, 400, "invalid_request"},
		{"rita", notebooksapi.MarginalsRequest{Project: "wl", Table: "person", Marginals: [][]string{{"asl"}}, Epsilon: f64p(1), Delta: f64p(1e-6)}, 403, "forbidden"},
		{"rita", notebooksapi.MarginalsRequest{Project: "wl", Table: "booking", Join: []string{"person"}, Marginals: [][]string{{"person.asl"}}, Epsilon: f64p(1), Delta: f64p(1e-6)}, 403, "forbidden"},
		{"rita", notebooksapi.MarginalsRequest{Project: "wl", Table: "person", Join: []string{"booking"}, Marginals: [][]string{{"sex"}}, Epsilon: f64p(1), Delta: f64p(1e-6)}, 400, "invalid_options"},
	} {
		resp, b := ts.call(t, bad.user, "POST", "/v1/marginals", bad.body)
		if p := problemOf(t, resp, b); resp.StatusCode != bad.status || p.Code != bad.code {
			t.Errorf("%s %v: %d %s, want %d %s (%s)", bad.user, bad.body, resp.StatusCode, p.Code, bad.status, bad.code, p.Detail)
		}
	}
	if charges(ts, "wl") != 1 {
		t.Errorf("refusals charged: %d charges", charges(ts, "wl"))
	}
	// Bookings with their person's sex: a person column beside a booking column.
	resp, b = ts.call(t, "rita", "POST", "/v1/marginals", notebooksapi.MarginalsRequest{Project: "wl", Table: "booking", Join: []string{"person"},
		Marginals: [][]string{{"priority", "person.sex"}}, Epsilon: f64p(1), Delta: f64p(1e-6)})
	if resp.StatusCode != 200 {
		t.Fatalf("join: %d: %s", resp.StatusCode, b)
	}
	rel = query.MarginalsRelease{}
	mustJSON(t, b, &rel)
	if len(rel.Tables) != 1 || len(rel.Tables[0].Cells) != 4*2 || !slices.Equal(rel.Tables[0].Attributes, []string{"priority", "person.sex"}) || !slices.Equal(rel.Join, []string{"person"}) {
		t.Errorf("join: %+v", rel)
	}
}

// POST /v1/synthetic over loopback: a Parquet file with only the asked columns, the release
// and utility report in its metadata, charged once; the ledger verifies.
func TestSyntheticEndpoint(t *testing.T) {
	ts := startServer(t)
	cols := []string{"priority", "region", "within_target", "wait_days"}
	resp, b := ts.call(t, "rita", "POST", "/v1/synthetic", notebooksapi.SyntheticRequest{Project: "wl", Table: "booking", Columns: cols,
		Method: "mst", Rows: 1500, Epsilon: f64p(1), Delta: f64p(1e-6)})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.apache.parquet" {
		t.Fatalf("%d %s: %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	rd, tbl := readParquet(t, b)
	if rd.NumRows() != 1500 {
		t.Errorf("%d rows", rd.NumRows())
	}
	var names []string
	for _, f := range tbl.Schema().Fields() {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, cols) {
		t.Errorf("columns %v, want %v", names, cols)
	}
	meta := rd.MetaData().KeyValueMetadata().FindValue("velo.synthetic")
	if meta == nil {
		t.Fatal("no velo.synthetic metadata")
	}
	var rel query.Synthetic
	mustJSON(t, []byte(*meta), &rel)
	if rel.Method != "mst" || rel.Rows != 1500 || len(rel.Utility.Marginals) == 0 || rel.RhoSpent > rel.Rho || resp.Header.Get("Velo-Release-Id") != rel.ReleaseID {
		t.Errorf("release %+v", rel)
	}
	if bytes.Contains(b, []byte("pid")) || bytes.Contains(b, []byte("booking_key")) {
		t.Errorf("an identifier column's name is in the file")
	}
	if charges(ts, "wl") != 1 || ts.project(t, "wl").Spent.Epsilon != 1 {
		t.Errorf("want one charge of epsilon 1")
	}
	// The same request again, as JSON: the same release, rows and all, marked cached and
	// not charged again.
	resp, b = ts.call(t, "rita", "POST", "/v1/synthetic", notebooksapi.SyntheticRequest{Project: "wl", Table: "booking", Columns: cols,
		Method: "mst", Rows: 1500, Epsilon: f64p(1), Delta: f64p(1e-6)}, "Accept", "application/json")
	if resp.StatusCode != 200 {
		t.Fatalf("again: %d: %.300s", resp.StatusCode, b)
	}
	var again notebooksapi.SyntheticJSON
	mustJSON(t, b, &again)
	if !again.Release.Cached || again.Release.ReleaseID != rel.ReleaseID || again.Release.RowsSHA256 == "" || again.Release.RowsSHA256 != rel.RowsSHA256 || charges(ts, "wl") != 1 {
		t.Fatalf("again: cached %v, release %s (first %s), rows %s (first %s), %d charges", again.Release.Cached, again.Release.ReleaseID, rel.ReleaseID,
			again.Release.RowsSHA256, rel.RowsSHA256, charges(ts, "wl"))
	}
	if _, tbl2 := readParquet(t, again.Parquet); !array.TableEqual(tbl, tbl2) {
		t.Error("the cached release's rows differ from the first's")
	}
	// The release by its id: its record as JSON (the default), its rows as Parquet.
	relPath := "/v1/projects/wl/releases/" + rel.ReleaseID
	resp, b = ts.call(t, "rita", "GET", relPath, nil)
	var record query.Synthetic
	if mustJSON(t, b, &record); resp.StatusCode != 200 || record.ReleaseID != rel.ReleaseID || record.RowsSHA256 != rel.RowsSHA256 {
		t.Fatalf("release record: %d %.300s", resp.StatusCode, b)
	}
	resp, b = ts.call(t, "rita", "GET", relPath, nil, "Accept", "application/vnd.apache.parquet")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.apache.parquet" || resp.Header.Get("Velo-Release-Id") != rel.ReleaseID {
		t.Fatalf("release rows: %d %s %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if _, tbl3 := readParquet(t, b); !array.TableEqual(tbl, tbl3) {
		t.Error("the release's rows by its id differ from the release's")
	}
	if charges(ts, "wl") != 1 {
		t.Errorf("%d charges after reading the release again", charges(ts, "wl"))
	}
	if err := os.Remove(filepath.Join(ts.State, "releases", rel.ReleaseID+".rows")); err != nil {
		t.Fatal(err)
	}
	resp, b = ts.call(t, "rita", "GET", relPath, nil, "Accept", "application/vnd.apache.parquet")
	if p := problemOf(t, resp, b); resp.StatusCode != 404 || !strings.Contains(p.Detail, "not kept on this server") {
		t.Errorf("rows gone: %d %s", resp.StatusCode, p.Detail)
	}
	// JSON: the release beside the same kind of file.
	resp, b = ts.call(t, "rita", "POST", "/v1/synthetic", notebooksapi.SyntheticRequest{Project: "wl", Table: "person", Rows: 300, Epsilon: f64p(0.5), Delta: f64p(1e-7)}, "Accept", "application/json")
	if resp.StatusCode != 200 {
		t.Fatalf("%d: %.300s", resp.StatusCode, b)
	}
	var js notebooksapi.SyntheticJSON
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range js.Release.Attributes {
		got = append(got, a.Name)
	}
	// wl is approved for person's birth_year, region and sex; all three have public domains
	if !slices.Equal(got, []string{"birth_year", "sex", "region"}) || !bytes.HasPrefix(js.Parquet, []byte("PAR1")) || js.Release.Method != "aim" {
		t.Errorf("attributes %v, method %s", got, js.Release.Method)
	}
	if charges(ts, "wl") != 2 {
		t.Errorf("%d charges", charges(ts, "wl"))
	}
	resp, b = ts.call(t, "rita", "POST", "/v1/synthetic", notebooksapi.SyntheticRequest{Project: "wl", Table: "booking", Columns: []string{"pid"}, Epsilon: f64p(1), Delta: f64p(1e-6)})
	if p := problemOf(t, resp, b); resp.StatusCode != 403 || !strings.Contains(p.Detail, "identifier") {
		t.Errorf("pid as a column: %d %s", resp.StatusCode, p.Detail)
	}
	resp, b = ts.call(t, "dora", "GET", "/v1/ledger/verify", nil)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"ok":true`)) {
		t.Errorf("ledger verify: %d %s", resp.StatusCode, b)
	}
}

func f64p(f float64) *float64 { return &f }

// readParquet opens a Parquet file and reads it whole as an Arrow table (both let go when
// the test ends).
func readParquet(t *testing.T, b []byte) (*file.Reader, arrow.Table) {
	t.Helper()
	rd, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	fr, err := pqarrow.NewFileReader(rd, pqarrow.ArrowReadProperties{}, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tbl.Release)
	return rd, tbl
}
