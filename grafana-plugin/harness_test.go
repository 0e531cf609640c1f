package grafanaplugin_test

// The plugin as Grafana runs it: the backend executable, built as `make plugin` builds
// it, started through hashicorp go-plugin with Grafana's handshake (gRPC, protocol 2,
// magic cookie grafana_plugin_type=datasource, plugin sets "data" and "diagnostics"),
// configured from the provisioning file, answering the provisioned dashboard's panel
// queries from a live Velo.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/velo-fse/velo/grafana-plugin/pkg/plugin"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/notebooks-api/apitest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	apitest.Cleanup()
	os.Exit(code)
}

// buildBackend builds the plugin's executable under the name Grafana looks for.
func buildBackend(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gpx_velo_"+runtime.GOOS+"_"+runtime.GOARCH)
	// the flags of `make plugin`, so that the two share the build cache
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/velo-fse/velo/grafana-plugin/pkg")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// grafanaHost is the Grafana side of the plugin protocol.
type grafanaHost struct {
	data        pluginv2.DataClient
	diagnostics pluginv2.DiagnosticsClient
	settings    backend.DataSourceInstanceSettings
}

// startPlugin starts the executable; what it logs goes to stderr (as with Grafana, which
// keeps a plugin's log).
func startPlugin(t *testing.T, bin string, settings backend.DataSourceInstanceSettings, stderr io.Writer) *grafanaHost {
	t.Helper()
	cmd := exec.Command(bin)
	// Grafana passes a plugin its own variables (and, unless told otherwise, its host's);
	// the plugin needs nothing from the host.
	cmd.Env = []string{"GF_VERSION=" + grafanaVersion(t), "GF_EDITION=oss", "GF_PLUGIN_VERSION=test"}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{
			grpcplugin.ProtocolVersion: {
				"data":        &grpcplugin.DataGRPCPlugin{},
				"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
			},
		},
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Stderr:           stderr,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: stderr, Level: hclog.Debug}),
		StartTimeout:     time.Minute,
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("starting the plugin: %v", err)
	}
	if v := client.NegotiatedVersion(); v != 2 {
		t.Fatalf("negotiated protocol %d, want 2", v)
	}
	h := &grafanaHost{settings: settings}
	d, err := rpc.Dispense("data")
	if err != nil {
		t.Fatal(err)
	}
	h.data = d.(pluginv2.DataClient)
	g, err := rpc.Dispense("diagnostics")
	if err != nil {
		t.Fatal(err)
	}
	h.diagnostics = g.(pluginv2.DiagnosticsClient)
	return h
}

func (h *grafanaHost) pluginContext() backend.PluginContext {
	return backend.PluginContext{OrgID: 1, PluginID: pluginIDConst, DataSourceInstanceSettings: &h.settings,
		User: &backend.User{Login: "official", Role: "Viewer"}}
}

func (h *grafanaHost) checkHealth(t *testing.T) *backend.CheckHealthResult {
	t.Helper()
	resp, err := h.diagnostics.CheckHealth(context.Background(), &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(h.pluginContext())})
	if err != nil {
		t.Fatal(err)
	}
	return backend.FromProto().CheckHealthResponse(resp)
}

func (h *grafanaHost) queryData(t *testing.T, queries []backend.DataQuery, headers map[string]string) *backend.QueryDataResponse {
	t.Helper()
	req := backend.ToProto().QueryDataRequest(&backend.QueryDataRequest{PluginContext: h.pluginContext(), Queries: queries, Headers: headers})
	resp, err := h.data.QueryData(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	out, err := backend.FromProto().QueryDataResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const pluginIDConst = "velo-fse-datasource"

// provisionedSettings reads the data source as Grafana provisions it: ${VAR} references
// expanded from the environment given.
func provisionedSettings(t *testing.T, env map[string]string) backend.DataSourceInstanceSettings {
	t.Helper()
	p := readDatasourceProvisioning(t)
	ds := p.Datasources[0]
	expand := func(s string) string {
		return os.Expand(s, func(k string) string {
			v, ok := env[k]
			if !ok {
				t.Fatalf("provisioning refers to ${%s}, which the test does not set", k)
			}
			return v
		})
	}
	jsonData, err := json.Marshal(map[string]string{"url": expand(ds.JSONData.URL), "defaultProject": expand(ds.JSONData.DefaultProject), "timezone": expand(ds.JSONData.Timezone)})
	if err != nil {
		t.Fatal(err)
	}
	return backend.DataSourceInstanceSettings{
		UID: ds.UID, Name: ds.Name, Type: ds.Type, JSONData: jsonData, Updated: time.Now(),
		DecryptedSecureJSONData: map[string]string{"token": expand(ds.SecureJSONData.Token)},
	}
}

// panelQueries are the dashboard's targets as Grafana sends them for its saved range.
func panelQueries(t *testing.T) []backend.DataQuery {
	t.Helper()
	d := readDashboard(t)
	from, err := time.Parse(time.RFC3339, d.Time.From)
	if err != nil {
		t.Fatalf("dashboard time.from: %v", err)
	}
	to, err := time.Parse(time.RFC3339, d.Time.To)
	if err != nil {
		t.Fatalf("dashboard time.to: %v", err)
	}
	var qs []backend.DataQuery
	for i, pt := range dashboardTargets(t) {
		model := map[string]any{"refId": pt.RefID, "queryType": pt.QueryType, "project": pt.Project, "format": pt.Format,
			"datasource": map[string]string{"type": pluginIDConst, "uid": "velo"}, "intervalMs": 86400000, "maxDataPoints": 1000}
		if pt.SQL != "" {
			model["sql"] = pt.SQL
		}
		if pt.Epsilon != 0 {
			model["epsilon"] = pt.Epsilon
		}
		js, _ := json.Marshal(model)
		// Grafana sends each panel in a request of its own; one request with a refId per
		// panel is the same to the backend.
		qs = append(qs, backend.DataQuery{RefID: string(rune('A' + i)), QueryType: pt.QueryType, JSON: js,
			TimeRange: backend.TimeRange{From: from, To: to}, Interval: 24 * time.Hour, MaxDataPoints: 1000})
	}
	return qs
}

func TestPluginExecutable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the plugin executable")
	}
	velo := apitest.Start(t, apitest.Config{})
	bin := buildBackend(t)
	var pluginLog apitest.Buffer
	host := startPlugin(t, bin, provisionedSettings(t, map[string]string{"VELO_URL": velo.URL, "VELO_GRAFANA_TOKEN": velo.Tokens["grafana"]}), &pluginLog)

	health := host.checkHealth(t)
	if health.Status != backend.HealthStatusOk || !strings.Contains(health.Message, "project wl") {
		t.Fatalf("Save & test: %s %q", health.Status, health.Message)
	}

	queries := panelQueries(t)
	if len(queries) < 4 {
		t.Fatalf("the dashboard has %d queries", len(queries))
	}
	first := host.queryData(t, queries, nil)
	for _, q := range queries {
		r := first.Responses[q.RefID]
		if r.Error != nil || len(r.Frames) != 1 {
			t.Fatalf("panel query %s (%s): %v", q.RefID, q.JSON, r.Error)
		}
		if n, _ := r.Frames[0].RowLen(); n == 0 {
			t.Errorf("panel query %s: no rows", q.RefID)
		}
		// The saved range is the extract's period in Rome: exactly its days are asked for.
		if sql := r.Frames[0].Meta.ExecutedQueryString; strings.Contains(string(q.JSON), "timeFilter") && !strings.Contains(sql, "BETWEEN DATE '2024-01-01' AND DATE '2025-12-31'") {
			t.Errorf("panel query %s sent %s", q.RefID, sql)
		}
	}
	charges := velo.Charges(t, "wl")
	if want := countSQL(queries); charges != want {
		t.Fatalf("%d charges for %d SQL panels", charges, want)
	}

	// Refreshing the dashboard: the same panel queries again, and as alerting sends them
	// (no frontend, the FromAlert header). Nothing new is charged; the ledger shows it.
	for _, headers := range []map[string]string{nil, {"FromAlert": "true"}} {
		again := host.queryData(t, queries, headers)
		for _, q := range queries {
			if r := again.Responses[q.RefID]; r.Error != nil {
				t.Fatalf("refresh %s: %v", q.RefID, r.Error)
			}
		}
	}
	if n := velo.Charges(t, "wl"); n != charges {
		t.Errorf("refreshing the dashboard charged %d more queries", n-charges)
	}
	entries, _, err := ledger.Read(velo.State)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range entries {
		kinds[e.Kind]++
	}
	if kinds[ledger.KindCharge] != charges {
		t.Errorf("ledger entries %v: want %d charges", kinds, charges)
	}
	if _, err := ledger.Verify(velo.State, ledger.VerifyOptions{}); err != nil {
		t.Error(err)
	}

	// A wrong token is reported by Save & test, not hidden.
	bad := startPlugin(t, bin, provisionedSettings(t, map[string]string{"VELO_URL": velo.URL, "VELO_GRAFANA_TOKEN": "velo_not-a-token"}), &pluginLog)
	if h := bad.checkHealth(t); h.Status != backend.HealthStatusError || !strings.Contains(h.Message, "does not accept the token") {
		t.Errorf("Save & test with a wrong token: %s %q", h.Status, h.Message)
	}

	// The plugin's log never holds a token (it did log: the SDK's request lines).
	if pluginLog.String() == "" {
		t.Error("the plugin logged nothing: the check below would be empty")
	}
	for _, tok := range []string{velo.Tokens["grafana"], "velo_not-a-token"} {
		if strings.Contains(pluginLog.String(), tok) {
			t.Error("a token is in the plugin's log")
		}
	}
}

func countSQL(qs []backend.DataQuery) int {
	n := 0
	for _, q := range qs {
		if q.QueryType != "budget" {
			n++
		}
	}
	return n
}

// Every SQL panel of the dashboard, expanded as the backend expands it for the saved range,
// is valid Velo SQL: Velo's dry run (validation and price, no charge, no data read)
// accepts it at the panel's epsilon.
func TestDashboardSQLDryRun(t *testing.T) {
	velo := apitest.Start(t, apitest.Config{})
	loc, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range panelQueries(t) {
		var m plugin.QueryModel
		if err := json.Unmarshal(q.JSON, &m); err != nil {
			t.Fatal(err)
		}
		if m.QueryType == "budget" {
			continue
		}
		exp, err := plugin.ExpandMacros(m.SQL, q.TimeRange, q.Interval, loc)
		if err != nil {
			t.Fatalf("%s: %v", m.SQL, err)
		}
		status, b, err := velo.PostQuery("grafana", map[string]any{"project": m.Project, "sql": exp.SQL, "epsilon": m.Epsilon, "dry_run": true})
		if err != nil {
			t.Fatal(err)
		}
		var rel struct {
			DryRun  bool    `json:"dry_run"`
			Epsilon float64 `json:"epsilon"`
		}
		if status != http.StatusOK || json.Unmarshal(b, &rel) != nil || !rel.DryRun || rel.Epsilon != *m.Epsilon {
			t.Errorf("dry run of %s: %d %s", exp.SQL, status, b)
		}
	}
	if n := velo.Charges(t, "wl"); n != 0 {
		t.Errorf("dry runs charged %d queries", n)
	}
}
