package notebooksapi_test

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/parquet-go/parquet-go"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/notebooks-api/apitest"
	"github.com/velo-fse/velo/release"
	"github.com/velo-fse/velo/twin"
)

// twinCounts generates the dataset's twin as the engine does (the catalog, the default
// persons and seed: the same bytes) and counts its bookings by region from the Parquet file
// itself, read with parquet-go (the engine's query tests compare with plain DuckDB).
func twinCounts(t *testing.T) (version string, counts map[string]float64, avg map[string]float64) {
	t.Helper()
	cat, err := dataset.ReadCatalog(apitest.Dataset(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "twin")
	tc, err := twin.Generate(context.Background(), cat, dir, twin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dataset.TablePart(dir, "booking"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	region, ok1 := pf.Schema().Lookup("region")
	wait, ok2 := pf.Schema().Lookup("wait_days")
	if !ok1 || !ok2 {
		t.Fatal("the twin's booking table lacks region or wait_days")
	}
	counts, avg = map[string]float64{}, map[string]float64{}
	sums := map[string]float64{}
	r := parquet.NewReader(pf)
	rows := make([]parquet.Row, 256)
	for {
		n, err := r.ReadRows(rows)
		for _, row := range rows[:n] {
			k := row[region.ColumnIndex].String()
			counts[k]++
			sums[k] += float64(row[wait.ColumnIndex].Int32())
		}
		if err != nil {
			break
		}
	}
	for k, n := range counts {
		avg[k] = sums[k] / n
	}
	if len(counts) == 0 {
		t.Fatal("no bookings read from the twin")
	}
	return tc.DatasetVersion, counts, avg
}

// POST /v1/queries with "target": "dummy" over real HTTP: the exact answers of plain DuckDB
// on the twin's Parquet, marked dummy in JSON, CSV and Arrow with the real run's price,
// nothing charged, one dummy entry per run in the ledger; then the same SQL for real is
// charged once; a bad target is refused; Flight SQL takes x-velo-target.
func TestDummyQueries(t *testing.T) {
	ts := startServer(t)
	before := ts.project(t, "wl")
	version, counts, avg := twinCounts(t)
	sqlText := "SELECT region, COUNT(*) AS n, AVG(wait_days) AS w FROM booking GROUP BY region"
	body := map[string]any{"project": "wl", "sql": sqlText, "epsilon": 1, "target": "dummy"}

	resp, b := ts.call(t, "rita", "POST", "/v1/queries", body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("dummy query: %d %s", resp.StatusCode, b)
	}
	var rel release.Release
	mustJSON(t, b, &rel)
	if !rel.Dummy || rel.Epsilon != 0 || rel.Delta != 0 || rel.Price == nil || rel.Price.Epsilon != 1 || rel.Cached || rel.DatasetVersion != version {
		t.Fatalf("dummy release: dummy=%v epsilon=%g delta=%g price=%v cached=%v version=%s (twin %s)", rel.Dummy, rel.Epsilon, rel.Delta, rel.Price, rel.Cached, rel.DatasetVersion, version)
	}
	if rel.BudgetLeft.Epsilon != before.Left.Epsilon {
		t.Errorf("budget left %v, before %v", rel.BudgetLeft, before.Left)
	}
	seen := 0
	for i, row := range rel.Rows {
		region := row[0].(string)
		n, w := row[1].(float64), row[2]
		want, ok := counts[region]
		if !ok {
			if n != 0 || w != nil {
				t.Errorf("region %s, absent from the twin: n=%v w=%v", region, n, w)
			}
			continue
		}
		seen++
		if n != want || math.Abs(w.(float64)-avg[region]) > 1e-9 {
			t.Errorf("region %s: n=%v w=%v, plain DuckDB on the twin %v %v", region, n, w, want, avg[region])
		}
		if lo, hi, ok := release.CIBounds(rel.CI[i][1]); !ok || lo != n || hi != n {
			t.Errorf("region %s: interval [%v, %v] for the exact %v", region, lo, hi, n)
		}
	}
	if seen != len(counts) || seen == 0 {
		t.Fatalf("%d of the twin's %d regions released", seen, len(counts))
	}

	// CSV and Arrow say it too.
	resp, b = ts.call(t, "rita", "POST", "/v1/queries", body, "Accept", "text/csv")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("# dummy: true")) || !bytes.Contains(b, []byte("# price: epsilon=1 delta=0")) {
		t.Errorf("dummy CSV: %d\n%s", resp.StatusCode, b)
	}
	resp, b = ts.call(t, "rita", "POST", "/v1/queries", body, "Accept", "application/vnd.apache.arrow.stream")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("dummy Arrow: %d %s", resp.StatusCode, b)
	}
	rd, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	md := rd.Schema().Metadata()
	if i := md.FindKey("velo.dummy"); i < 0 || md.Values()[i] != "true" {
		t.Errorf("Arrow metadata lacks velo.dummy=true: %v", md)
	}
	if i := md.FindKey("velo.price"); i < 0 || md.Values()[i] != `{"epsilon":1,"delta":0}` {
		t.Errorf("Arrow metadata velo.price: %v", md)
	}
	rd.Release()

	after := ts.project(t, "wl")
	if after.Spent != before.Spent || after.Queries != before.Queries {
		t.Fatalf("dummy runs changed the budget: spent %v (%d queries), before %v (%d)", after.Spent, after.Queries, before.Spent, before.Queries)
	}
	dummies := 0
	for _, e := range ts.Ledger.Entries("wl", 0) {
		if e.Kind == ledger.KindDummy {
			dummies++
			if e.DatasetVersion != version || e.Epsilon != 0 || e.Actor != "user:rita" {
				t.Errorf("dummy entry %+v", e)
			}
		}
	}
	if dummies != 3 {
		t.Errorf("%d dummy entries for 3 dummy runs", dummies)
	}

	// The same SQL for real: charged once (the second is the cached release).
	delete(body, "target")
	for i := range 2 {
		resp, b = ts.call(t, "rita", "POST", "/v1/queries", body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("real run: %d %s", resp.StatusCode, b)
		}
		var real release.Release
		mustJSON(t, b, &real)
		if real.Dummy || real.Price != nil || real.Epsilon != 1 || real.Cached != (i == 1) || real.DatasetVersion == version {
			t.Errorf("real run %d: dummy=%v price=%v epsilon=%g cached=%v version=%s", i, real.Dummy, real.Price, real.Epsilon, real.Cached, real.DatasetVersion)
		}
	}
	if st := ts.project(t, "wl"); st.Queries != before.Queries+1 || math.Abs(st.Spent.Epsilon-before.Spent.Epsilon-1) > 1e-12 {
		t.Errorf("after the real runs: %d queries, spent %v", st.Queries, st.Spent)
	}

	// Refusals: a target that is not one, a dummy dry run, a table outside the allow-list.
	body["target"] = "staging"
	resp, b = ts.call(t, "rita", "POST", "/v1/queries", body)
	if p := problemOf(t, resp, b); resp.StatusCode != http.StatusBadRequest || p.Code != "invalid_request" || p.Field != "target" {
		t.Errorf("target staging: %d %+v", resp.StatusCode, p)
	}
	resp, b = ts.call(t, "rita", "POST", "/v1/queries", map[string]any{"project": "wl", "sql": sqlText, "target": "dummy", "dry_run": true})
	if p := problemOf(t, resp, b); resp.StatusCode != http.StatusBadRequest || p.Code != "invalid_options" {
		t.Errorf("dummy dry run: %d %+v", resp.StatusCode, p)
	}
	resp, b = ts.call(t, "otto", "POST", "/v1/queries", map[string]any{"project": "other", "sql": "SELECT COUNT(*) AS n FROM booking WHERE priority = 'U'", "target": "dummy"})
	if p := problemOf(t, resp, b); resp.StatusCode != http.StatusForbidden || p.Code != "forbidden" {
		t.Errorf("dummy query of a column outside the allow-list: %d %+v", resp.StatusCode, p)
	}

	// Flight SQL: the x-velo-target header.
	cl := flightServer(t, ts)
	rec, err := fetch(ts.as("rita", "x-velo-project", "wl", "x-velo-target", "dummy"), cl, "SELECT COUNT(*) AS n FROM booking")
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	fmd := rec.Schema().Metadata()
	var total float64
	for _, n := range counts {
		total += n
	}
	if i := fmd.FindKey("velo.dummy"); i < 0 || fmd.Values()[i] != "true" {
		t.Errorf("Flight SQL dummy release: metadata %v", fmd)
	}
	if got := rec.Column(0).(*array.Float64).Value(0); got != total {
		t.Errorf("Flight SQL dummy count %v, plain DuckDB on the twin %v", got, total)
	}
	if st := ts.project(t, "wl"); st.Queries != before.Queries+1 {
		t.Errorf("the Flight SQL dummy run was charged: %d queries", st.Queries)
	}
	if !strings.HasPrefix(version, "dummy_") {
		t.Errorf("twin version %s", version)
	}

	// The DPO's page lists the dummy runs apart from the charges.
	c := browser(t)
	if resp, _ := get(t, c, ts.URL+loginURL(t, ts)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	resp, page := get(t, c, ts.URL+"/ledger")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ledger page: %d", resp.StatusCode)
	}
	_, dummyRows, _ := strings.Cut(page, `<table id="dummies">`)
	dummyRows, _, _ = strings.Cut(dummyRows, "</table>")
	if n := strings.Count(dummyRows, `<tr class="dummy">`); n != 4 || !strings.Contains(dummyRows, "user:rita") || !strings.Contains(dummyRows, version) ||
		!strings.Contains(page, "4 dummy runs") || !strings.Contains(dummyRows, "SELECT COUNT(*) AS n FROM booking") {
		t.Errorf("the ledger page's dummy runs (%d rows):\n%s", n, dummyRows)
	}
	_, charges, _ := strings.Cut(page, `<table id="charges">`)
	if charges, _, _ = strings.Cut(charges, "</table>"); strings.Count(charges, `<tr class="charge">`) != 1 {
		t.Errorf("the ledger page's charges:\n%s", charges)
	}
}
