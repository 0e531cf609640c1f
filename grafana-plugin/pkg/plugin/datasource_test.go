package plugin_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/experimental"
	"github.com/grafana/grafana-plugin-sdk-go/experimental/datasourcetest"

	"github.com/velo-fse/velo/grafana-plugin/pkg/plugin"
	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/notebooks-api/apitest"
)

var update = flag.Bool("update", false, "rewrite the golden frames in testdata")

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	apitest.Cleanup()
	os.Exit(code)
}

// The dashboard's range: the synthetic extract's period, as Grafana sends it for
// "2024-01-01 00:00" to "2025-12-31 23:59:59" in a browser in Rome.
var period = backend.TimeRange{
	From: time.Date(2023, 12, 31, 23, 0, 0, 0, time.UTC),
	To:   time.Date(2025, 12, 31, 22, 59, 59, 0, time.UTC),
}

// Panel queries as the frontend sends them.
const (
	shareSQL  = "SELECT region, priority, AVG(CAST(within_target AS INTEGER)) AS share_within_target, COUNT(*) AS bookings FROM booking WHERE first_access AND $__timeFilter(d_contact) GROUP BY region, priority ORDER BY region, priority"
	medianSQL = "SELECT service_code, MEDIAN(wait_days) AS median_wait FROM booking WHERE first_access AND priority IS NOT NULL AND $__timeFilter(d_contact) GROUP BY service_code ORDER BY median_wait DESC"
	trendSQL  = "SELECT $__timeGroup(d_contact, 1M) AS month, AVG(CAST(within_target AS INTEGER)) AS share_within_target FROM booking WHERE first_access AND $__timeFilter(d_contact) GROUP BY month ORDER BY month"
	// by region too: a wide frame with one series per region (labels)
	regionTrendSQL = "SELECT $__timeGroup(d_contact, quarter) AS quarter, region, COUNT(*) AS bookings FROM booking WHERE $__timeFilter(d_contact) GROUP BY quarter, region"
)

func settingsFor(url, token, project string) backend.DataSourceInstanceSettings {
	js, _ := json.Marshal(map[string]string{"url": url, "defaultProject": project, "timezone": "Europe/Rome"})
	return backend.DataSourceInstanceSettings{
		UID: "velo", Name: "Velo", JSONData: js,
		DecryptedSecureJSONData: map[string]string{"token": token},
	}
}

func newDS(t *testing.T, s backend.DataSourceInstanceSettings) *plugin.Datasource {
	t.Helper()
	inst, err := plugin.NewDatasource(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	ds := inst.(*plugin.Datasource)
	t.Cleanup(ds.Dispose)
	return ds
}

func dataQuery(refID string, tr backend.TimeRange, model map[string]any) backend.DataQuery {
	js, _ := json.Marshal(model)
	return backend.DataQuery{RefID: refID, JSON: js, TimeRange: tr, Interval: time.Hour, MaxDataPoints: 1000}
}

// dashboardQueries are the "Liste di attesa" panels' queries, plus a quarterly trend by
// region.
func dashboardQueries(tr backend.TimeRange) []backend.DataQuery {
	return []backend.DataQuery{
		dataQuery("share", tr, map[string]any{"queryType": "sql", "sql": shareSQL, "epsilon": 0.5, "format": "table"}),
		dataQuery("median", tr, map[string]any{"queryType": "sql", "sql": medianSQL, "epsilon": 0.5, "format": "table"}),
		dataQuery("trend", tr, map[string]any{"queryType": "sql", "sql": trendSQL, "epsilon": 0.5, "format": "time_series"}),
		dataQuery("regions", tr, map[string]any{"sql": regionTrendSQL, "project": "wl", "epsilon": 0.5, "format": "time_series"}),
		dataQuery("budget", tr, map[string]any{"queryType": "budget"}),
	}
}

func TestQueryData(t *testing.T) {
	velo := apitest.Start(t, apitest.Config{})
	ds := newDS(t, settingsFor(velo.URL, velo.Tokens["grafana"], "wl"))
	ctx := context.Background()

	first, err := ds.QueryData(ctx, &backend.QueryDataRequest{Queries: dashboardQueries(period)})
	if err != nil {
		t.Fatal(err)
	}
	for ref, r := range first.Responses {
		if r.Error != nil {
			t.Fatalf("%s: %v", ref, r.Error)
		}
		if len(r.Frames) != 1 {
			t.Fatalf("%s: %d frames", ref, len(r.Frames))
		}
	}
	charged := velo.Charges(t, "wl")
	if charged != 4 {
		t.Fatalf("the four SQL panels made %d charges", charged)
	}

	// Table: 21 regions x 4 priority classes, every public group released.
	share := first.Responses["share"].Frames[0]
	if n, _ := share.RowLen(); n != 84 || share.Meta.Type != data.FrameTypeTable {
		t.Errorf("share: %d rows, type %s", n, share.Meta.Type)
	}
	wantFields(t, share, "region", "priority", "share_within_target", "share_within_target_ci_lower", "share_within_target_ci_upper", "bookings", "bookings_ci_lower", "bookings_ci_upper")
	checkIntervals(t, share, "share_within_target", "bookings")
	if !strings.Contains(share.Meta.ExecutedQueryString, "d_contact BETWEEN DATE '2024-01-01' AND DATE '2025-12-31'") {
		t.Errorf("executed query: %s", share.Meta.ExecutedQueryString)
	}

	// Time series: 24 monthly points, in order, a wide frame alerting can use.
	trend := first.Responses["trend"].Frames[0]
	wantFields(t, trend, "month", "share_within_target", "share_within_target_ci_lower", "share_within_target_ci_upper")
	if ts := trend.TimeSeriesSchema(); ts.Type != data.TimeSeriesTypeWide {
		t.Errorf("trend is a %s series, want wide", ts.Type)
	}
	months := trend.Fields[0]
	if months.Len() != 24 {
		t.Fatalf("trend has %d months, want 24", months.Len())
	}
	for i := range months.Len() {
		want := time.Date(2024, time.January+time.Month(i), 1, 0, 0, 0, 0, time.UTC)
		if got := months.At(i).(time.Time); !got.Equal(want) {
			t.Errorf("month %d = %v, want %v", i, got, want)
		}
	}
	checkIntervals(t, trend, "share_within_target")

	// Long to wide: one bookings series (and its bounds) per region, 8 quarters each.
	regions := first.Responses["regions"].Frames[0]
	if ts := regions.TimeSeriesSchema(); ts.Type != data.TimeSeriesTypeWide {
		t.Errorf("regions is a %s series, want wide", ts.Type)
	}
	if n, _ := regions.RowLen(); n != 8 || len(regions.Fields) != 1+3*21 {
		t.Errorf("regions: %d rows, %d fields; want 8 quarters and 21 regions x 3 fields", n, len(regions.Fields))
	}
	if l := regions.Fields[1].Labels; l["region"] == "" {
		t.Errorf("series without a region label: %v", l)
	}

	// The budget panel ran beside the SQL panels, so it may have seen some of their
	// charges: the figure to check is read after them.
	wantFields(t, first.Responses["budget"].Frames[0], "project", "epsilon_total", "epsilon_spent", "epsilon_left", "delta_total", "delta_spent", "delta_left", "queries")
	after, err := ds.QueryData(ctx, &backend.QueryDataRequest{Queries: []backend.DataQuery{dataQuery("budget", period, map[string]any{"queryType": "budget"})}})
	if err != nil {
		t.Fatal(err)
	}
	budget := after.Responses["budget"].Frames[0]
	if left := budget.Fields[3].At(0).(float64); math.Abs(left-8) > 1e-9 {
		t.Errorf("epsilon left %v, want 10 - 4 x 0.5", left)
	}

	// A refresh an hour later (same days): the same text is sent, Velo answers every panel
	// from its release cache, and the ledger shows no new charge.
	later := backend.TimeRange{From: period.From.Add(time.Hour), To: period.To.Add(-time.Hour)}
	again, err := ds.QueryData(ctx, &backend.QueryDataRequest{Queries: dashboardQueries(later)})
	if err != nil {
		t.Fatal(err)
	}
	if n := velo.Charges(t, "wl"); n != charged {
		t.Errorf("the refresh made %d new charges", n-charged)
	}
	for ref, r := range again.Responses {
		if r.Error != nil {
			t.Fatalf("refresh %s: %v", ref, r.Error)
		}
		if ref == "budget" {
			continue
		}
		f0, f1 := first.Responses[ref].Frames[0], r.Frames[0]
		if f1.Meta.Custom.(map[string]any)["cached"] != true || f0.Meta.Custom.(map[string]any)["releaseId"] != f1.Meta.Custom.(map[string]any)["releaseId"] {
			t.Errorf("%s: not the cached release: %v", ref, f1.Meta.Custom)
		}
		if !strings.Contains(f1.Meta.Notices[0].Text, "no privacy budget spent") {
			t.Errorf("%s: notice %q", ref, f1.Meta.Notices[0].Text)
		}
		if d := framesDiffer(f0, f1); d != "" {
			t.Errorf("%s: the cached release differs: %s", ref, d)
		}
	}
	if err := ledgerVerifies(velo.State); err != nil {
		t.Error(err)
	}

	// Golden frames: the structure (fields, types, labels, keys, metadata) is exact; the
	// noisy values and the release ids change from run to run, so they are checked above
	// (value inside its interval) and masked here.
	for _, ref := range []string{"share", "median", "trend", "regions", "budget"} {
		r := first.Responses[ref]
		if ref == "budget" {
			r = after.Responses[ref] // the first one ran beside the charges
		}
		mask(r.Frames[0])
		experimental.CheckGoldenJSONResponse(t, "testdata", "live_"+ref, &r, *update)
	}
}

func wantFields(t *testing.T, f *data.Frame, names ...string) {
	t.Helper()
	var got []string
	for _, fl := range f.Fields {
		got = append(got, fl.Name)
	}
	// a wide frame repeats names with labels: compare the distinct names in order
	var distinct []string
	for _, n := range got {
		if len(distinct) == 0 || distinct[len(distinct)-1] != n {
			distinct = append(distinct, n)
		}
	}
	if strings.Join(distinct, ",") != strings.Join(names, ",") {
		t.Errorf("fields %v, want %v", got, names)
	}
}

// checkIntervals checks that every released value lies in its confidence interval.
func checkIntervals(t *testing.T, f *data.Frame, cols ...string) {
	t.Helper()
	for _, col := range cols {
		v, _ := f.FieldByName(col)
		lo, _ := f.FieldByName(col + "_ci_lower")
		hi, _ := f.FieldByName(col + "_ci_upper")
		if v == nil || lo == nil || hi == nil {
			t.Fatalf("%s or its interval missing", col)
		}
		withCI := 0
		for i := range v.Len() {
			x, _ := v.ConcreteAt(i)
			l, lok := lo.ConcreteAt(i)
			h, hok := hi.ConcreteAt(i)
			if !lok || !hok {
				continue
			}
			withCI++
			if x.(float64) < l.(float64) || x.(float64) > h.(float64) {
				t.Errorf("%s row %d: %v outside [%v, %v]", col, i, x, l, h)
			}
		}
		if withCI == 0 {
			t.Errorf("%s: no value has a confidence interval", col)
		}
	}
}

// mask replaces the noisy numbers and run-dependent ids so that a frame can be compared
// with a golden file, and sorts a table's rows by its keys (ORDER BY a noisy value is
// noisy too).
func mask(f *data.Frame) {
	if f.Meta != nil && f.Meta.Type == data.FrameTypeTable {
		sortByKeys(f)
	}
	for _, fl := range f.Fields {
		if fl.Type() != data.FieldTypeNullableFloat64 && fl.Type() != data.FieldTypeFloat64 {
			continue
		}
		for i := range fl.Len() {
			if fl.Type() == data.FieldTypeFloat64 {
				fl.Set(i, 0.0)
			} else if fl.At(i) != nil {
				z := 0.0
				fl.Set(i, &z)
			}
		}
	}
	if f.Meta != nil {
		if c, ok := f.Meta.Custom.(map[string]any); ok {
			for _, k := range []string{"releaseId", "datasetVersion", "budgetLeft"} {
				if _, ok := c[k]; ok {
					c[k] = "masked"
				}
			}
		}
		// The first notice says what was charged; Velo's notes that follow depend on the
		// noisy values (how many lie outside their range or have an interval covering it),
		// so they stay out of the golden frames.
		if len(f.Meta.Notices) > 1 {
			f.Meta.Notices = f.Meta.Notices[:1]
		}
		for i := range f.Meta.Notices {
			f.Meta.Notices[i].Text = "masked"
		}
	}
}

func sortByKeys(f *data.Frame) {
	n, _ := f.RowLen()
	key := func(i int) string {
		var b strings.Builder
		for _, fl := range f.Fields {
			if fl.Type().Numeric() {
				continue
			}
			v, _ := fl.ConcreteAt(i)
			fmt.Fprintf(&b, "%v\x00", v)
		}
		return b.String()
	}
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i
	}
	slices.SortFunc(rows, func(a, b int) int { return strings.Compare(key(a), key(b)) })
	for k, fl := range f.Fields {
		sorted := data.NewFieldFromFieldType(fl.Type(), n)
		sorted.Name, sorted.Labels, sorted.Config = fl.Name, fl.Labels, fl.Config
		for j, i := range rows {
			sorted.Set(j, fl.At(i))
		}
		f.Fields[k] = sorted
	}
}

func framesDiffer(a, b *data.Frame) string {
	if len(a.Fields) != len(b.Fields) {
		return fmt.Sprintf("%d fields, then %d", len(a.Fields), len(b.Fields))
	}
	for i := range a.Fields {
		if a.Fields[i].Len() != b.Fields[i].Len() {
			return a.Fields[i].Name + ": lengths"
		}
		for j := range a.Fields[i].Len() {
			x, _ := a.Fields[i].ConcreteAt(j)
			y, _ := b.Fields[i].ConcreteAt(j)
			if fmt.Sprint(x) != fmt.Sprint(y) {
				return fmt.Sprintf("%s row %d: %v then %v", a.Fields[i].Name, j, x, y)
			}
		}
	}
	return ""
}

func ledgerVerifies(state string) error {
	_, err := ledger.Verify(state, ledger.VerifyOptions{})
	return err
}

// Each query's error is its own; Velo's refusals reach the panel as readable downstream
// errors, and nothing refused is charged.
func TestQueryErrors(t *testing.T) {
	tiny := ledger.Project{ID: "tiny", Purpose: "a small budget", LegalBasis: "art. 9(2)(j) GDPR", Allow: map[string][]string{"booking": {}}, EpsilonBudget: 1, DefaultEpsilon: 1}
	velo := apitest.Start(t, apitest.Config{
		Projects: []ledger.Project{apitest.WaitingLists, tiny},
		Users:    []notebooksapi.User{{Name: "grafana", Role: notebooksapi.RoleOfficial, Projects: []string{"wl", "tiny"}}},
	})
	ds := newDS(t, settingsFor(velo.URL, velo.Tokens["grafana"], "wl"))
	ctx := context.Background()
	// Spend tiny's whole budget first.
	spend, err := ds.QueryData(ctx, &backend.QueryDataRequest{Queries: []backend.DataQuery{
		dataQuery("spend", period, map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "tiny"}),
	}})
	if err != nil || spend.Responses["spend"].Error != nil {
		t.Fatal(err, spend.Responses["spend"].Error)
	}
	before := velo.Charges(t, "wl") + velo.Charges(t, "tiny")

	resp, err := ds.QueryData(ctx, &backend.QueryDataRequest{Queries: []backend.DataQuery{
		dataQuery("ok", period, map[string]any{"sql": "SELECT region, COUNT(*) AS n FROM booking WHERE $__timeFilter(d_contact) GROUP BY region"}),
		dataQuery("rejected", period, map[string]any{"sql": "SELECT pid, COUNT(*) AS n FROM booking GROUP BY pid"}),
		dataQuery("exhausted", period, map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking WHERE first_access", "project": "tiny"}),
		dataQuery("cap", period, map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking WHERE NOT first_access", "epsilon": 5}),
		dataQuery("stranger", period, map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "other"}),
		dataQuery("macro", period, map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking WHERE $__timeFilter()"}),
		dataQuery("notime", period, map[string]any{"sql": "SELECT region, COUNT(*) AS n FROM booking GROUP BY region", "format": "time_series"}),
		dataQuery("badtype", period, map[string]any{"queryType": "logs"}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Responses["ok"]; r.Error != nil || len(r.Frames) != 1 {
		t.Fatalf("ok: %v", r.Error)
	}
	for _, c := range []struct {
		ref    string
		status backend.Status
		text   string
	}{
		{"rejected", backend.StatusBadRequest, "[sql_rejected]"},
		{"exhausted", backend.StatusForbidden, "[budget_exhausted]"},
		{"cap", backend.StatusBadRequest, "[invalid_options]"},
		{"stranger", backend.StatusForbidden, "[forbidden]"},
		{"macro", backend.StatusBadRequest, "$__timeFilter takes one date column"},
		{"notime", backend.StatusBadRequest, "the time series format needs a date key"},
		{"badtype", backend.StatusBadRequest, `unknown query type "logs"`},
	} {
		r := resp.Responses[c.ref]
		if r.Error == nil {
			t.Errorf("%s: no error", c.ref)
			continue
		}
		if r.Status != c.status || r.ErrorSource != backend.ErrorSourceDownstream || !strings.Contains(r.Error.Error(), c.text) {
			t.Errorf("%s: %d %s %q; want %d downstream containing %q", c.ref, r.Status, r.ErrorSource, r.Error, c.status, c.text)
		}
	}
	// Only "ok" and "notime" reached the data (the latter's release is fine; the format is
	// the panel's mistake).
	if n := velo.Charges(t, "wl") + velo.Charges(t, "tiny"); n != before+2 {
		t.Errorf("%d charges for the refused queries, want 2 (ok and notime)", n-before)
	}
}

func TestCheckHealth(t *testing.T) {
	velo := apitest.Start(t, apitest.Config{})
	ctx := context.Background()
	cases := []struct {
		name   string
		s      backend.DataSourceInstanceSettings
		ok     bool
		detail string
	}{
		{"official", settingsFor(velo.URL, velo.Tokens["grafana"], "wl"), true, "project wl has ε 10 of 10 left"},
		{"no default project", settingsFor(velo.URL, velo.Tokens["grafana"], ""), true, "Connected to Velo as grafana (official)"},
		{"wrong token", settingsFor(velo.URL, "velo_"+strings.Repeat("x", 43), "wl"), false, "does not accept the token"},
		{"dpo token", settingsFor(velo.URL, velo.Tokens["dora"], ""), false, "may not query"},
		{"not a member", settingsFor(velo.URL, velo.Tokens["grafana"], "other"), false, `not a member of the default project "other"`},
		{"no token", settingsFor(velo.URL, "", "wl"), false, "the Velo token is not set"},
		{"no url", settingsFor("", velo.Tokens["grafana"], "wl"), false, "the Velo URL is not set"},
		{"not http", settingsFor("ftp://velo.invalid", velo.Tokens["grafana"], "wl"), false, "is not an http(s) URL"},
		{"nobody there", settingsFor(unusedURL(t), velo.Tokens["grafana"], "wl"), false, "does not answer /healthz"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := newDS(t, c.s).CheckHealth(ctx, &backend.CheckHealthRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if (res.Status == backend.HealthStatusOk) != c.ok || !strings.Contains(res.Message, c.detail) {
				t.Errorf("%s: %q; want ok=%v with %q", res.Status, res.Message, c.ok, c.detail)
			}
			for _, tok := range velo.Tokens {
				if strings.Contains(res.Message, tok) {
					t.Errorf("the health message shows a token")
				}
			}
		})
	}
	// A misconfigured data source fails each query with the same readable message.
	resp, err := newDS(t, settingsFor("", "", "wl")).QueryData(ctx, &backend.QueryDataRequest{Queries: dashboardQueries(period)[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Responses["share"]; r.Error == nil || !strings.Contains(r.Error.Error(), "the Velo URL is not set") {
		t.Errorf("query on a data source without URL: %v", r.Error)
	}
}

// unusedURL is a loopback address nobody listens on.
func unusedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// The same queries through the plugin's gRPC server (the SDK's in-process test server):
// settings, requests and frames cross the protocol Grafana speaks.
func TestGRPC(t *testing.T) {
	velo := apitest.Start(t, apitest.Config{})
	addr := strings.TrimPrefix(unusedURL(t), "http://")
	tp, err := datasourcetest.Manage(plugin.NewDatasource, datasourcetest.ManageOpts{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tp.Shutdown(); err != nil {
			t.Error(err)
		}
	})
	settings := settingsFor(velo.URL, velo.Tokens["grafana"], "wl")
	pc := backend.PluginContext{OrgID: 1, PluginID: plugin.ID, DataSourceInstanceSettings: &settings}
	ctx := context.Background()

	health, err := tp.Client.CheckHealth(ctx, &backend.CheckHealthRequest{PluginContext: pc})
	if err != nil {
		t.Fatal(err)
	}
	if health.Status != backend.HealthStatusOk {
		t.Fatalf("health over gRPC: %s %s", health.Status, health.Message)
	}
	queries := append(dashboardQueries(period), dataQuery("rejected", period, map[string]any{"sql": "SELECT * FROM booking"}))
	resp, err := tp.Client.QueryData(ctx, &backend.QueryDataRequest{PluginContext: pc, Queries: queries})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range dashboardQueries(period) {
		r := resp.Responses[q.RefID]
		if r.Error != nil || len(r.Frames) != 1 {
			t.Fatalf("%s over gRPC: %v", q.RefID, r.Error)
		}
	}
	trend := resp.Responses["trend"].Frames[0]
	if n, _ := trend.RowLen(); n != 24 || trend.TimeSeriesSchema().Type != data.TimeSeriesTypeWide {
		t.Errorf("trend over gRPC: %d rows, %s", n, trend.TimeSeriesSchema().Type)
	}
	if r := resp.Responses["rejected"]; r.Error == nil || !strings.Contains(r.Error.Error(), "[sql_rejected]") || r.ErrorSource != backend.ErrorSourceDownstream {
		t.Errorf("rejected over gRPC: %v (%s)", r.Error, r.ErrorSource)
	}
	// The query editor's preview, over the same gRPC server (the SDK's test server can
	// be started once per test binary).
	previewOnDummyData(t, velo, tp.Client, pc)
}

// The plugin's cost on a dashboard refresh: QueryData for the four SQL panels answered
// from Velo's release cache, against the same four requests sent to Velo's API directly
// (the floor: what any client pays).
func BenchmarkRefresh(b *testing.B) {
	velo := apitest.Start(b, apitest.Config{})
	inst, err := plugin.NewDatasource(context.Background(), settingsFor(velo.URL, velo.Tokens["grafana"], "wl"))
	if err != nil {
		b.Fatal(err)
	}
	ds := inst.(*plugin.Datasource)
	queries := dashboardQueries(period)[:4]
	ctx := context.Background()
	req := &backend.QueryDataRequest{Queries: queries}
	if _, err := ds.QueryData(ctx, req); err != nil { // charge once; every later run is cached
		b.Fatal(err)
	}
	b.Run("plugin", func(b *testing.B) {
		for b.Loop() {
			resp, err := ds.QueryData(ctx, req)
			if err != nil || resp.Responses["trend"].Error != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("api", func(b *testing.B) {
		loc, _ := time.LoadLocation("Europe/Rome")
		var bodies []map[string]any
		for _, q := range queries {
			var m plugin.QueryModel
			_ = json.Unmarshal(q.JSON, &m)
			exp, err := plugin.ExpandMacros(m.SQL, q.TimeRange, q.Interval, loc)
			if err != nil {
				b.Fatal(err)
			}
			bodies = append(bodies, map[string]any{"project": "wl", "sql": exp.SQL, "epsilon": m.Epsilon})
		}
		for b.Loop() {
			for _, body := range bodies {
				status, _, err := velo.PostQuery("grafana", body)
				if err != nil || status != http.StatusOK {
					b.Fatalf("status %d: %v", status, err)
				}
			}
		}
	})
	if n := velo.Charges(b, "wl"); n != 4 {
		b.Errorf("%d charges: the refreshes were not all cached", n)
	}
}

// busyProxy stands in front of Velo and answers the first n query requests as Velo does
// when its query slots are full (429 too_many_queries, Retry-After, nothing charged).
type busyProxy struct {
	n, seen atomic.Int64
	next    http.Handler
}

func (p *busyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/queries" && p.seen.Add(1) <= p.n.Load() {
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"type":"about:blank","title":"Too Many Requests","status":429,"code":"too_many_queries","detail":"all query slots are busy: try again shortly"}`))
		return
	}
	p.next.ServeHTTP(w, r)
}

// A panel whose query meets a busy Velo is retried (Velo charged nothing for the 429s)
// and filled in; past the retries the panel shows Velo's 429.
func TestBusyVeloIsRetried(t *testing.T) {
	velo := apitest.Start(t, apitest.Config{})
	target, _ := url.Parse(velo.URL)
	proxy := &busyProxy{next: httputil.NewSingleHostReverseProxy(target)}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	ds := newDS(t, settingsFor(front.URL, velo.Tokens["grafana"], "wl"))
	ctx := context.Background()

	proxy.n.Store(3)
	resp, err := ds.QueryData(ctx, &backend.QueryDataRequest{Queries: dashboardQueries(period)[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Responses["share"]; r.Error != nil {
		t.Fatalf("after three busy answers: %v", r.Error)
	}
	if got := proxy.seen.Load(); got != 4 {
		t.Errorf("%d requests reached the proxy, want 3 refused and 1 answered", got)
	}
	if n := velo.Charges(t, "wl"); n != 1 {
		t.Errorf("%d charges, want 1", n)
	}

	proxy.seen.Store(0)
	proxy.n.Store(100)
	resp, err = ds.QueryData(ctx, &backend.QueryDataRequest{Queries: []backend.DataQuery{dataQuery("busy", period, map[string]any{"sql": medianSQL})}})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.Responses["busy"]
	if r.Error == nil || r.Status != backend.StatusTooManyRequests || !strings.Contains(r.Error.Error(), "[too_many_queries]") {
		t.Errorf("always busy: %d %v", r.Status, r.Error)
	}
	if got := proxy.seen.Load(); got != 4 {
		t.Errorf("%d attempts, want 4 (one and three retries)", got)
	}
	if n := velo.Charges(t, "wl"); n != 1 {
		t.Errorf("%d charges after the refused query, want still 1", n)
	}
}

// Dashboard variables: a column's public domain, named from the reference data, for free.
func TestDomainQueries(t *testing.T) {
	velo := apitest.Start(t, apitest.Config{})
	ds := newDS(t, settingsFor(velo.URL, velo.Tokens["grafana"], "wl"))
	resp, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{
		dataQuery("regions", period, map[string]any{"queryType": "domain", "table": "booking", "column": "region"}),
		dataQuery("priorities", period, map[string]any{"queryType": "domain", "table": "booking", "column": "priority"}),
		dataQuery("providers", period, map[string]any{"queryType": "domain", "table": "booking", "column": "provider_id"}),
		dataQuery("unknown", period, map[string]any{"queryType": "domain", "table": "booking", "column": "nope"}),
		dataQuery("unnamed", period, map[string]any{"queryType": "domain", "table": "booking"}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	regions := resp.Responses["regions"]
	if regions.Error != nil {
		t.Fatal(regions.Error)
	}
	f := regions.Frames[0]
	wantFields(t, f, "__text", "__value")
	texts := map[string]string{}
	for i := range f.Fields[1].Len() {
		texts[f.Fields[1].At(i).(string)] = f.Fields[0].At(i).(string)
	}
	if len(texts) != 21 || texts["120"] != "Lazio" || texts["030"] != "Lombardia" {
		t.Errorf("region options: %v", texts)
	}
	if p := resp.Responses["priorities"]; p.Error != nil || p.Frames[0].Fields[1].Len() != 4 {
		t.Errorf("priority options: %v", p.Error)
	}
	for ref, want := range map[string]string{
		"providers": "booking.provider_id has no public domain",
		"unknown":   "booking.nope is not a column the project may read",
		"unnamed":   "names a table and a column",
	} {
		if r := resp.Responses[ref]; r.Error == nil || !strings.Contains(r.Error.Error(), want) {
			t.Errorf("%s: %v, want %q", ref, r.Error, want)
		}
	}
	if n := velo.Charges(t, "wl"); n != 0 {
		t.Errorf("domain queries charged %d", n)
	}
}

// previewOnDummyData checks the query editor's preview (target "dummy", set by the
// frontend) through client (TestGRPC's, over real gRPC): the frames come from the dummy
// twin, marked dummy with a warning notice and the real price, nothing is charged and the
// ledger records the runs as dummy; the same query as a dashboard panel (no target) is then
// charged once; a target that is not one is refused.
func previewOnDummyData(t *testing.T, velo *apitest.Server, client backend.QueryDataHandler, pc backend.PluginContext) {
	t.Helper()
	ctx := context.Background()
	before := velo.Charges(t, "wl")
	sql := "SELECT region, COUNT(*) AS n FROM booking WHERE $__timeFilter(d_contact) GROUP BY region"
	preview := dataQuery("preview", period, map[string]any{"sql": sql, "epsilon": 0.5, "target": "dummy"})
	for range 2 {
		resp, err := client.QueryData(ctx, &backend.QueryDataRequest{PluginContext: pc, Queries: []backend.DataQuery{preview}})
		if err != nil {
			t.Fatal(err)
		}
		r := resp.Responses["preview"]
		if r.Error != nil || len(r.Frames) != 1 {
			t.Fatalf("preview over gRPC: %v", r.Error)
		}
		f := r.Frames[0]
		custom, _ := f.Meta.Custom.(map[string]any)
		if custom["dummy"] != true || !strings.HasPrefix(fmt.Sprint(custom["datasetVersion"]), "dummy_") {
			t.Errorf("preview frame meta: %v", custom)
		}
		if len(f.Meta.Notices) == 0 || f.Meta.Notices[0].Severity != data.NoticeSeverityWarning ||
			!strings.Contains(f.Meta.Notices[0].Text, "Dummy data") || !strings.Contains(f.Meta.Notices[0].Text, "on the data it costs ε 0.5, δ 0") {
			t.Errorf("preview notices: %+v", f.Meta.Notices)
		}
		if n, _ := f.RowLen(); n != 21 {
			t.Errorf("preview: %d rows, want the 21 regions", n)
		}
		// Exact: every count is whole and its interval is the count itself.
		for i := range f.Fields[1].Len() {
			v, ok := f.Fields[1].ConcreteAt(i)
			lo, _ := f.Fields[2].ConcreteAt(i)
			hi, _ := f.Fields[3].ConcreteAt(i)
			if n, isNum := v.(float64); !ok || !isNum || n != float64(int64(n)) || lo != v || hi != v {
				t.Errorf("preview row %d: %v [%v, %v]", i, v, lo, hi)
			}
		}
	}
	if n := velo.Charges(t, "wl") - before; n != 0 {
		t.Fatalf("the previews made %d charges", n)
	}
	dummies := 0
	for _, e := range velo.Ledger.Entries("wl", 0) {
		if e.Kind == ledger.KindDummy {
			dummies++
		}
	}
	if dummies != 2 {
		t.Errorf("%d dummy runs in the ledger, want 2", dummies)
	}

	panel := dataQuery("panel", period, map[string]any{"sql": sql, "epsilon": 0.5})
	bad := dataQuery("bad", period, map[string]any{"sql": sql, "target": "staging"})
	resp, err := client.QueryData(ctx, &backend.QueryDataRequest{PluginContext: pc, Queries: []backend.DataQuery{panel, bad}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Responses["panel"]; r.Error != nil || len(r.Frames) != 1 {
		t.Fatalf("panel: %v", r.Error)
	} else if custom, _ := r.Frames[0].Meta.Custom.(map[string]any); custom["dummy"] != nil || custom["cached"] != false {
		t.Errorf("panel frame meta: %v", custom)
	}
	if r := resp.Responses["bad"]; r.Error == nil || !strings.Contains(r.Error.Error(), `unknown target "staging"`) {
		t.Errorf("bad target: %v", r.Error)
	}
	if n := velo.Charges(t, "wl") - before; n != 1 {
		t.Fatalf("the panel after the previews made %d charges, want 1", n)
	}
}

// TestErrorsInTheOfficialsLanguage: with jsonData.language "it" the backend asks Velo for
// Italian (Accept-Language), and a refusal reaches the panel in Italian, its code
// unchanged; without it, in English. A language other than it or en is refused.
func TestErrorsInTheOfficialsLanguage(t *testing.T) {
	velo := apitest.Start(t, apitest.Config{
		Projects: []ledger.Project{apitest.WaitingLists},
		Users:    []notebooksapi.User{{Name: "grafana", Role: notebooksapi.RoleOfficial, Projects: []string{"wl"}}},
	})
	for lang, want := range map[string]string{"it": `non sei membro del progetto "other"`, "": `you are not a member of project "other"`} {
		s := settingsFor(velo.URL, velo.Tokens["grafana"], "wl")
		var js map[string]string
		if err := json.Unmarshal(s.JSONData, &js); err != nil {
			t.Fatal(err)
		}
		js["language"] = lang
		s.JSONData, _ = json.Marshal(js)
		ds := newDS(t, s)
		resp, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{
			dataQuery("stranger", period, map[string]any{"sql": "SELECT COUNT(*) AS n FROM booking", "project": "other"}),
		}})
		if err != nil {
			t.Fatal(err)
		}
		r := resp.Responses["stranger"]
		if r.Error == nil || !strings.Contains(r.Error.Error(), "[forbidden]") || !strings.Contains(r.Error.Error(), want) {
			t.Errorf("language %q: %v, want [forbidden] and %q", lang, r.Error, want)
		}
	}
	s := settingsFor(velo.URL, velo.Tokens["grafana"], "wl")
	s.JSONData = []byte(`{"url": "` + velo.URL + `", "language": "fr"}`)
	health, err := newDS(t, s).CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if err != nil || health.Status != backend.HealthStatusError || !strings.Contains(health.Message, `language "fr"`) {
		t.Errorf("language fr: %v %+v", err, health)
	}
}
