package grafanaplugin_test

// These tests hold the files Grafana reads for the Velo data source — the provisioning of
// the data source and of its dashboards, the "Liste di attesa" dashboard and the plugin's
// plugin.json — to what Grafana accepts and to one another: a wrong key or a mismatched
// uid is not an error in Grafana, it is a dashboard that silently shows nothing.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"go.yaml.in/yaml/v3"

	"github.com/velo-fse/velo/fse"
)

const (
	dashboardPath  = "provisioning/dashboards/liste-di-attesa.json"
	providerPath   = "provisioning/dashboards/velo.yml"
	datasourcePath = "provisioning/datasources/velo.yml"
	pluginPath     = "src/plugin.json"
	grafanaDocPath = "../docs/grafana.md"

	// fallbackPluginID is the plugin id the dashboards are checked against while
	// src/plugin.json does not exist yet.
	fallbackPluginID = "velo-fse-datasource"
)

// panelTarget is one query of the dashboard as the backend receives it.
type panelTarget struct {
	Panel     string // the panel's title
	RefID     string
	QueryType string
	SQL       string
	Project   string
	Epsilon   float64 // 0 when the target declares none (a budget read spends nothing)
	Format    string
}

// dashboardTargets returns every query of the "Liste di attesa" dashboard, in panel order.
func dashboardTargets(t *testing.T) []panelTarget {
	t.Helper()
	var out []panelTarget
	for _, p := range readDashboard(t).Panels {
		for _, q := range p.Targets {
			pt := panelTarget{Panel: p.Title, RefID: q.RefID, QueryType: q.QueryType, Project: q.Project, Format: q.Format}
			if q.SQL != nil {
				pt.SQL = *q.SQL
			}
			if q.Epsilon != nil {
				pt.Epsilon = *q.Epsilon
			}
			out = append(out, pt)
		}
	}
	return out
}

// The dashboard as plain JSON: only what the tests look at.
type dashboardJSON struct {
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	Description   string   `json:"description"`
	Tags          []string `json:"tags"`
	Timezone      string   `json:"timezone"`
	Refresh       *string  `json:"refresh"`
	SchemaVersion int      `json:"schemaVersion"`
	Time          struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Panels []panelJSON `json:"panels"`
}

type panelJSON struct {
	ID          int          `json:"id"`
	Type        string       `json:"type"`
	Title       string       `json:"title"`
	Description string       `json:"description"`
	Datasource  *dsRef       `json:"datasource"`
	Targets     []targetJSON `json:"targets"`
	FieldConfig struct {
		Defaults  map[string]any `json:"defaults"`
		Overrides []struct {
			Matcher struct {
				ID      string `json:"id"`
				Options any    `json:"options"`
			} `json:"matcher"`
			Properties []struct {
				ID    string `json:"id"`
				Value any    `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
	Options         map[string]any `json:"options"`
	Transformations []struct {
		ID      string         `json:"id"`
		Options map[string]any `json:"options"`
	} `json:"transformations"`
}

type targetJSON struct {
	RefID      string   `json:"refId"`
	Datasource *dsRef   `json:"datasource"`
	QueryType  string   `json:"queryType"`
	Project    string   `json:"project"`
	Epsilon    *float64 `json:"epsilon"`
	Format     string   `json:"format"`
	SQL        *string  `json:"sql"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func readDashboard(t *testing.T) dashboardJSON {
	t.Helper()
	var d dashboardJSON
	if err := json.Unmarshal(readFile(t, dashboardPath), &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pluginID is the id the frontend declares in src/plugin.json, which Grafana matches
// against a data source's and a panel's datasource type.
func pluginID(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(pluginPath)
	if errors.Is(err, os.ErrNotExist) {
		return fallbackPluginID
	}
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: %v", pluginPath, err)
	}
	return p.ID
}

// The fields each panel's query returns (docs/design.md#the-release and the backend's frames: every DP
// column followed by <col>_ci_lower and <col>_ci_upper; a budget read is one row).
var (
	shareTableFields = []string{"region", "priority",
		"share_within_target", "share_within_target_ci_lower", "share_within_target_ci_upper",
		"people", "people_ci_lower", "people_ci_upper"}
	medianFields = []string{"service_code", "median_wait", "median_wait_ci_lower", "median_wait_ci_upper"}
	trendFields  = []string{"month", "share_within_target", "share_within_target_ci_lower", "share_within_target_ci_upper"}
	budgetFields = []string{"project", "epsilon_total", "epsilon_spent", "epsilon_left",
		"delta_total", "delta_spent", "delta_left", "queries"}
)

// wantPanels is the dashboard the waiting-list monitoring asks for.
var wantPanels = []struct {
	title, types, queryType, format, sql string
	epsilon                              float64
	fields                               []string
}{
	{
		title: "Prenotazioni entro i tempi massimi, per regione e classe di priorità", types: "table bargauge",
		queryType: "sql", format: "table", epsilon: 1, fields: shareTableFields,
		sql: "SELECT region, priority, AVG(CAST(within_target AS INTEGER)) AS share_within_target, COUNT(DISTINCT pid) AS people " +
			"FROM booking WHERE first_access AND $__timeFilter(d_contact) GROUP BY region, priority ORDER BY region, priority",
	},
	{
		title: "Attesa mediana per prestazione (giorni)", types: "barchart table",
		queryType: "sql", format: "table", epsilon: 2, fields: medianFields,
		sql: "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 1) service_code, " +
			"MEDIAN(wait_days, contribution_bounds_per_group => (0, 120)) AS median_wait FROM booking " +
			"WHERE first_access AND priority IS NOT NULL AND $__timeFilter(d_contact) GROUP BY service_code ORDER BY median_wait DESC",
	},
	{
		title: "Andamento mensile della quota entro i tempi massimi", types: "timeseries",
		queryType: "sql", format: "time_series", epsilon: 0.25, fields: trendFields,
		sql: "SELECT $__timeGroup(d_contact, 1M) AS month, AVG(CAST(within_target AS INTEGER)) AS share_within_target " +
			"FROM booking WHERE first_access AND $__timeFilter(d_contact) GROUP BY month ORDER BY month",
	},
	{
		title: "Budget di privacy residuo (ε)", types: "stat",
		queryType: "budget", format: "table", fields: budgetFields,
	},
}

// sdkErr turns an error of the foundation SDK (v0.0.18) into a plain one. Its
// UnmarshalJSONStrict methods end in `return errs` with errs a cog.BuildErrors, so
// success comes back as a non-nil error interface holding a nil slice. (Validate
// returns a true nil; sdkErr is harmless there.)
func sdkErr(err error) error {
	var b cog.BuildErrors
	if err == nil || (errors.As(err, &b) && len(b) == 0) {
		return nil
	}
	return err
}

var registerVariants sync.Once

// registerSDKVariants registers, once per test binary, the SDK's panel plugins (so that
// panel options and custom field configs are decoded strictly, not as `any`) and a
// dataquery variant for Velo's queries (so that every target is decoded as a veloQuery
// and checked by its Validate). The SDK keeps them in its process-wide runtime.
func registerSDKVariants(id string) {
	registerVariants.Do(func() {
		plugins.RegisterDefaultPlugins()
		cog.NewRuntime().RegisterDataqueryVariant(variants.DataqueryConfig{
			Identifier:                 id,
			DataqueryUnmarshaler:       decodeVeloQuery,
			StrictDataqueryUnmarshaler: decodeVeloQuery,
		})
	})
}

// veloQuery is a Velo panel query (the frontend's VeloQuery, the backend's QueryModel),
// with the fields Grafana itself adds to a target.
type veloQuery struct {
	RefID      string          `json:"refId"`
	Hide       *bool           `json:"hide,omitempty"`
	Key        string          `json:"key,omitempty"`
	Datasource json.RawMessage `json:"datasource,omitempty"`
	QueryType  string          `json:"queryType"`
	Project    string          `json:"project"`
	SQL        string          `json:"sql,omitempty"`
	Epsilon    *float64        `json:"epsilon,omitempty"`
	Delta      *float64        `json:"delta,omitempty"`
	Format     string          `json:"format"`
}

func decodeVeloQuery(raw []byte) (variants.Dataquery, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	q := &veloQuery{}
	if err := dec.Decode(q); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *veloQuery) ImplementsDataqueryVariant() {}
func (q *veloQuery) DataqueryType() string       { return "velo" }

func (q *veloQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(*veloQuery)
	return ok && cmp.Equal(q, o)
}

// Validate checks what the backend refuses, so the dashboard cannot ship a query that
// only fails once a panel is opened.
func (q *veloQuery) Validate() error {
	var errs []error
	if q.RefID == "" {
		errs = append(errs, errors.New("refId is empty"))
	}
	if q.Project == "" {
		errs = append(errs, errors.New("project is empty"))
	}
	if q.Format != "table" && q.Format != "time_series" {
		errs = append(errs, fmt.Errorf("format %q is not table or time_series", q.Format))
	}
	switch q.QueryType {
	case "sql":
		if strings.TrimSpace(q.SQL) == "" {
			errs = append(errs, errors.New("sql is empty"))
		}
		if q.Epsilon == nil || *q.Epsilon <= 0 {
			errs = append(errs, errors.New("an sql query needs an epsilon > 0, chosen for the panel"))
		}
	case "budget":
		if q.SQL != "" || q.Epsilon != nil {
			errs = append(errs, errors.New("a budget read has no sql and no epsilon"))
		}
	default:
		errs = append(errs, fmt.Errorf("queryType %q is not sql or budget", q.QueryType))
	}
	return errors.Join(errs...)
}

// TestDashboardFoundationSDK decodes the dashboard with the Grafana foundation SDK's
// strict decoder (unknown fields, wrong types and missing required fields are errors, in
// the dashboard, the panels, the panels' options and custom field configs) and runs the
// SDK's Validate.
func TestDashboardFoundationSDK(t *testing.T) {
	id := pluginID(t)
	registerSDKVariants(id)
	raw := readFile(t, dashboardPath)

	var d dashboard.Dashboard
	if err := sdkErr(d.UnmarshalJSONStrict(raw)); err != nil {
		t.Fatalf("strict decoding of %s:\n%v", dashboardPath, err)
	}
	if err := sdkErr(d.Validate()); err != nil {
		t.Fatalf("%s does not validate:\n%v", dashboardPath, err)
	}
	if d.Uid == nil || *d.Uid == "" || d.Title == nil || *d.Title == "" {
		t.Errorf("the decoded dashboard has no uid or title")
	}

	// PanelOrRowPanel.UnmarshalJSONStrict takes the typed-nil "error" of a panel that
	// decoded cleanly for a failure and returns before storing the panel, so d.Panels
	// holds empty entries and d.Validate() saw no panel (errors inside panels do reach
	// the dashboard's error). Decode and validate each panel on its own. (The same
	// happens one level down: a panel's strictly checked options are dropped, p.Options
	// stays nil; the check itself stands.)
	var doc struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(d.Panels) != len(doc.Panels) || len(doc.Panels) == 0 {
		t.Fatalf("decoded %d panels of %d", len(d.Panels), len(doc.Panels))
	}
	for i, rawPanel := range doc.Panels {
		var p dashboard.Panel
		if err := sdkErr(p.UnmarshalJSONStrict(rawPanel)); err != nil {
			t.Errorf("panels[%d]: strict decoding:\n%v", i, err)
			continue
		}
		if err := sdkErr(p.Validate()); err != nil {
			t.Errorf("panels[%d] (%s) does not validate:\n%v", i, p.Type, err)
		}
		if p.Title == nil || *p.Title == "" || p.Datasource == nil || len(p.Targets) == 0 {
			t.Errorf("panels[%d] (%s): no title, datasource or targets after decoding", i, p.Type)
		}
		for j, q := range p.Targets {
			if _, ok := q.(*veloQuery); !ok {
				t.Errorf("panels[%d].targets[%d] decoded as %T, not as a Velo query: its datasource type is not %q", i, j, q, id)
			}
		}
		checkFieldConfigSDK(t, fmt.Sprintf("panels[%d]", i), p.Type, rawPanel)
	}
}

// checkFieldConfigSDK decodes a panel's fieldConfig strictly, including the properties of
// its overrides, which the SDK keeps as untyped values: a misspelt override property
// (custom.fillBelow) would be ignored by Grafana without a word. Each property is
// decoded as Grafana applies it, on top of the defaults, so that required custom options
// the defaults hold are there.
func checkFieldConfigSDK(t *testing.T, where, panelType string, rawPanel []byte) {
	t.Helper()
	var p struct {
		FieldConfig *struct {
			Defaults map[string]any `json:"defaults"`
		} `json:"fieldConfig"`
	}
	if err := json.Unmarshal(rawPanel, &p); err != nil {
		t.Fatal(err)
	}
	if p.FieldConfig == nil {
		return
	}
	var raw struct {
		FieldConfig json.RawMessage `json:"fieldConfig"`
	}
	if err := json.Unmarshal(rawPanel, &raw); err != nil {
		t.Fatal(err)
	}
	var fcs dashboard.FieldConfigSource
	if err := sdkErr(fcs.UnmarshalJSONStrict(raw.FieldConfig)); err != nil {
		t.Errorf("%s.fieldConfig: strict decoding:\n%v", where, err)
		return
	}
	if err := sdkErr(fcs.Validate()); err != nil {
		t.Errorf("%s.fieldConfig does not validate:\n%v", where, err)
	}
	defaults := p.FieldConfig.Defaults
	defaultCustom, _ := defaults["custom"].(map[string]any)
	variant, hasVariant := cog.ConfigForPanelcfgVariant(panelType)
	for i, o := range fcs.Overrides {
		for j, prop := range o.Properties {
			at := fmt.Sprintf("%s.fieldConfig.overrides[%d].properties[%d] (%s)", where, i, j, prop.Id)
			name, custom := strings.CutPrefix(prop.Id, "custom.")
			if !custom {
				merged := maps.Clone(defaults)
				merged[prop.Id] = prop.Value
				var fc dashboard.FieldConfig
				if err := sdkErr(fc.UnmarshalJSONStrict(mustJSON(t, merged))); err != nil {
					t.Errorf("%s: not a field option:\n%v", at, err)
				}
				continue
			}
			if !hasVariant || variant.StrictFieldConfigUnmarshaler == nil {
				t.Errorf("%s: a %s panel has no custom field options", at, panelType)
				continue
			}
			merged := maps.Clone(defaultCustom)
			if merged == nil {
				merged = map[string]any{}
			}
			merged[name] = prop.Value
			if _, err := variant.StrictFieldConfigUnmarshaler(mustJSON(t, merged)); sdkErr(err) != nil {
				t.Errorf("%s: not a %s field option:\n%v", at, panelType, err)
			}
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDashboardTargets reads the dashboard as plain JSON and checks every query against
// the data source and the plugin.
func TestDashboardTargets(t *testing.T) {
	d := readDashboard(t)
	ds := readDatasourceProvisioning(t)
	if len(ds.Datasources) != 1 {
		t.Fatalf("%s: %d data sources, want 1", datasourcePath, len(ds.Datasources))
	}
	want := dsRef{Type: pluginID(t), UID: ds.Datasources[0].UID}
	project := ds.Datasources[0].JSONData.DefaultProject
	if len(d.Panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		at := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 || ids[p.ID] {
			t.Errorf("%s: id missing or repeated", at)
		}
		ids[p.ID] = true
		if p.Datasource == nil || *p.Datasource != want {
			t.Errorf("%s: datasource %+v, want %+v", at, p.Datasource, want)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", at)
		}
		if len(p.Targets) > 0 && p.Targets[0].QueryType == "sql" && !strings.Contains(p.Description, "95%") {
			t.Errorf("%s: the description does not say the numbers come with 95%% intervals", at)
		}
		refIDs := map[string]bool{}
		for i, q := range p.Targets {
			at := fmt.Sprintf("%s, target %d", at, i)
			if q.RefID == "" || refIDs[q.RefID] {
				t.Errorf("%s: refId %q is empty or not unique in the panel", at, q.RefID)
			}
			refIDs[q.RefID] = true
			if q.Datasource == nil || *q.Datasource != want {
				t.Errorf("%s: datasource %+v, want %+v", at, q.Datasource, want)
			}
			if q.Project != project {
				t.Errorf("%s: project %q, want the data source's default project %q", at, q.Project, project)
			}
			if q.Format == "" || q.QueryType == "" {
				t.Errorf("%s: no format or queryType", at)
			}
			if q.QueryType != "sql" {
				continue
			}
			if q.SQL == nil || strings.TrimSpace(*q.SQL) == "" {
				t.Errorf("%s: empty sql", at)
				continue
			}
			if q.Epsilon == nil || *q.Epsilon <= 0 || *q.Epsilon > 2 {
				t.Errorf("%s: epsilon %v, want one in (0, 2] (the demo project's per-query cap)", at, q.Epsilon)
			}
			for _, m := range regexp.MustCompile(`\$__\w+`).FindAllString(*q.SQL, -1) {
				if !slices.Contains([]string{"$__timeFilter", "$__timeGroup", "$__timeFrom", "$__timeTo"}, m) {
					t.Errorf("%s: %s is not one of Velo's macros", at, m)
				}
			}
		}
	}

	for _, w := range wantPanels {
		i := slices.IndexFunc(d.Panels, func(p panelJSON) bool { return p.Title == w.title })
		if i < 0 {
			t.Errorf("no panel %q", w.title)
			continue
		}
		p := d.Panels[i]
		if !slices.Contains(strings.Fields(w.types), p.Type) {
			t.Errorf("panel %q is a %s, want one of %s", w.title, p.Type, w.types)
		}
		if len(p.Targets) != 1 {
			t.Errorf("panel %q: %d targets, want 1", w.title, len(p.Targets))
			continue
		}
		q := p.Targets[0]
		got := []any{q.QueryType, q.Format, deref(q.SQL), deref(q.Epsilon)}
		if diff := cmp.Diff([]any{w.queryType, w.format, w.sql, w.epsilon}, got); diff != "" {
			t.Errorf("panel %q: query (queryType, format, sql, epsilon) differs (-want +got):\n%s", w.title, diff)
		}
		checkOverrides(t, p, w.fields)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// checkOverrides checks that a panel's field overrides, transformations and field
// selections name fields its query returns: Grafana ignores one that matches nothing.
func checkOverrides(t *testing.T, p panelJSON, fields []string) {
	t.Helper()
	for _, o := range p.FieldConfig.Overrides {
		opt, _ := o.Matcher.Options.(string)
		switch o.Matcher.ID {
		case "byName":
			if !slices.Contains(fields, opt) {
				t.Errorf("panel %q: override for field %q, which the query does not return (%v)", p.Title, opt, fields)
			}
		case "byRegexp":
			if n := countMatches(t, opt, fields); n == 0 {
				t.Errorf("panel %q: override regexp %s matches no field of %v", p.Title, opt, fields)
			}
		default:
			t.Errorf("panel %q: override matcher %q: the test knows byName and byRegexp", p.Title, o.Matcher.ID)
		}
		for _, prop := range o.Properties {
			if prop.ID == "custom.fillBelowTo" {
				if to, _ := prop.Value.(string); !slices.Contains(fields, to) {
					t.Errorf("panel %q: fillBelowTo %q is not a field of %v", p.Title, prop.Value, fields)
				}
			}
		}
	}
	for _, tr := range p.Transformations {
		if ex, ok := tr.Options["excludeByName"].(map[string]any); ok {
			for name := range ex {
				if !slices.Contains(fields, name) {
					t.Errorf("panel %q: transformation %s excludes %q, which the query does not return", p.Title, tr.ID, name)
				}
			}
		}
	}
	if ro, ok := p.Options["reduceOptions"].(map[string]any); ok {
		if sel, _ := ro["fields"].(string); sel != "" {
			if n := countMatches(t, sel, fields); n != 1 {
				t.Errorf("panel %q: reduceOptions.fields %s matches %d fields of %v, want 1", p.Title, sel, n, fields)
			}
		}
	}
	if xf, _ := p.Options["xField"].(string); xf != "" && !slices.Contains(fields, xf) {
		t.Errorf("panel %q: xField %q is not a field of %v", p.Title, xf, fields)
	}
}

// countMatches counts the fields a Grafana field regexp (/.../, as in matchers and
// reduceOptions.fields) matches.
func countMatches(t *testing.T, grafanaRegexp string, fields []string) int {
	t.Helper()
	expr, ok := strings.CutPrefix(grafanaRegexp, "/")
	if expr, ok = strings.CutSuffix(expr, "/"); !ok {
		t.Errorf("field regexp %q is not written /.../", grafanaRegexp)
		return 0
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		t.Errorf("field regexp %q: %v", grafanaRegexp, err)
		return 0
	}
	n := 0
	for _, f := range fields {
		if re.MatchString(f) {
			n++
		}
	}
	return n
}

// TestDashboardPresentation checks the dashboard-level settings and the presentation the
// waiting-list monitoring relies on: percentages, the confidence band of the trend, the
// budget stat.
func TestDashboardPresentation(t *testing.T) {
	d := readDashboard(t)
	if d.UID != "velo-liste-di-attesa" || d.Title != "Liste di attesa" {
		t.Errorf("uid %q, title %q", d.UID, d.Title)
	}
	if diff := cmp.Diff([]string{"velo", "cup", "liste di attesa"}, d.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if d.Refresh == nil || *d.Refresh != "" {
		t.Errorf("refresh %v, want \"\" (no automatic refresh)", d.Refresh)
	}
	if d.Timezone != "browser" || d.SchemaVersion < 39 {
		t.Errorf("timezone %q, schemaVersion %d", d.Timezone, d.SchemaVersion)
	}
	from, errFrom := time.Parse(time.RFC3339, d.Time.From)
	to, errTo := time.Parse(time.RFC3339, d.Time.To)
	if errFrom != nil || errTo != nil || !to.After(from) {
		t.Errorf("time %q..%q is not an absolute range (%v, %v)", d.Time.From, d.Time.To, errFrom, errTo)
	}
	if !strings.Contains(d.Description, "periodo") {
		t.Errorf("the description does not say the time range is the extract's period")
	}

	panel := func(title string) panelJSON {
		for _, p := range d.Panels {
			if p.Title == title {
				return p
			}
		}
		t.Fatalf("no panel %q", title)
		return panelJSON{}
	}
	props := func(p panelJSON, field string) map[string]any {
		out := map[string]any{}
		for _, o := range p.FieldConfig.Overrides {
			opt, _ := o.Matcher.Options.(string)
			if o.Matcher.ID == "byName" && opt == field ||
				o.Matcher.ID == "byRegexp" && countMatches(t, opt, []string{field}) == 1 {
				for _, prop := range o.Properties {
					out[prop.ID] = prop.Value
				}
			}
		}
		return out
	}
	unit := func(p panelJSON, field string) any {
		if u, ok := props(p, field)["unit"]; ok {
			return u
		}
		return p.FieldConfig.Defaults["unit"]
	}

	share := panel(wantPanels[0].title)
	trend := panel(wantPanels[2].title)
	for _, p := range []panelJSON{share, trend} {
		for _, f := range []string{"share_within_target", "share_within_target_ci_lower", "share_within_target_ci_upper"} {
			if u := unit(p, f); u != "percentunit" {
				t.Errorf("panel %q: %s has unit %v, want percentunit", p.Title, f, u)
			}
		}
	}

	upper := props(trend, "share_within_target_ci_upper")
	lower := props(trend, "share_within_target_ci_lower")
	if upper["custom.fillBelowTo"] != "share_within_target_ci_lower" {
		t.Errorf("trend: the upper bound does not fill down to the lower one: %v", upper["custom.fillBelowTo"])
	}
	for name, bound := range map[string]map[string]any{"upper": upper, "lower": lower} {
		if w, _ := bound["custom.lineWidth"].(float64); bound["custom.lineWidth"] == nil || w != 0 {
			t.Errorf("trend: the %s bound is drawn as a line (lineWidth %v)", name, bound["custom.lineWidth"])
		}
		if h, _ := bound["custom.hideFrom"].(map[string]any); h["legend"] != true {
			t.Errorf("trend: the %s bound is in the legend (hideFrom %v)", name, bound["custom.hideFrom"])
		}
		if _, renamed := bound["displayName"]; renamed {
			// fillBelowTo names a field by its display name.
			t.Errorf("trend: the %s bound is renamed, which breaks fillBelowTo", name)
		}
	}

	budget := panel(wantPanels[3].title)
	if ro, _ := budget.Options["reduceOptions"].(map[string]any); ro["fields"] != "/^epsilon_left$/" {
		t.Errorf("budget stat: reduceOptions %v, want fields /^epsilon_left$/", budget.Options["reduceOptions"])
	}
}

// TestDashboardMappingsMatchReferenceData checks that the codes the dashboard names in
// value mappings (regions, monitored services) are fse's, with fse's names.
func TestDashboardMappingsMatchReferenceData(t *testing.T) {
	wantRegions := map[string]string{}
	for _, r := range fse.Regions {
		wantRegions[r.Code] = r.Name
	}
	wantServices := map[string]string{}
	for _, s := range fse.Services {
		wantServices[s.Code] = s.Name
	}
	want := map[string]map[string]string{"region": wantRegions, "service_code": wantServices}

	seen := map[string]bool{}
	for _, p := range readDashboard(t).Panels {
		for _, o := range p.FieldConfig.Overrides {
			field, _ := o.Matcher.Options.(string)
			codes, ok := want[field]
			if o.Matcher.ID != "byName" || !ok {
				continue
			}
			for _, prop := range o.Properties {
				if prop.ID != "mappings" {
					continue
				}
				seen[field] = true
				got := map[string]string{}
				b, _ := json.Marshal(prop.Value)
				var mappings []struct {
					Type    string `json:"type"`
					Options map[string]struct {
						Text string `json:"text"`
					} `json:"options"`
				}
				if err := json.Unmarshal(b, &mappings); err != nil {
					t.Fatalf("panel %q: mappings of %s: %v", p.Title, field, err)
				}
				for _, m := range mappings {
					if m.Type != "value" {
						t.Errorf("panel %q: mapping of %s has type %q, want value", p.Title, field, m.Type)
					}
					for code, r := range m.Options {
						got[code] = r.Text
					}
				}
				if diff := cmp.Diff(codes, got); diff != "" {
					t.Errorf("panel %q: value mappings of %s differ from package fse (-fse +dashboard):\n%s", p.Title, field, diff)
				}
			}
		}
	}
	for field := range want {
		if !seen[field] {
			t.Errorf("no panel maps %s codes to names", field)
		}
	}
}

// datasourceProvisioning is Grafana's data source provisioning file, with the keys Velo's
// uses; unknown keys are errors (Grafana would ignore a misspelt one).
type datasourceProvisioning struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name      string `yaml:"name"`
		Type      string `yaml:"type"`
		UID       string `yaml:"uid"`
		OrgID     int    `yaml:"orgId"`
		Access    string `yaml:"access"`
		IsDefault bool   `yaml:"isDefault"`
		Editable  bool   `yaml:"editable"`
		JSONData  struct {
			URL            string `yaml:"url"`
			DefaultProject string `yaml:"defaultProject"`
			Timezone       string `yaml:"timezone"`
			Language       string `yaml:"language"`
		} `yaml:"jsonData"`
		SecureJSONData struct {
			Token string `yaml:"token"`
		} `yaml:"secureJsonData"`
	} `yaml:"datasources"`
}

type dashboardProvisioning struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name                  string `yaml:"name"`
		OrgID                 int    `yaml:"orgId"`
		Folder                string `yaml:"folder"`
		FolderUID             string `yaml:"folderUid"`
		Type                  string `yaml:"type"`
		DisableDeletion       bool   `yaml:"disableDeletion"`
		AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
		UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
		Options               struct {
			Path                      string `yaml:"path"`
			FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, path)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readDatasourceProvisioning(t *testing.T) datasourceProvisioning {
	t.Helper()
	var p datasourceProvisioning
	decodeYAML(t, datasourcePath, &p)
	return p
}

// envRef is a whole value taken from the environment, which Grafana expands when it
// reads a provisioning file.
var envRef = regexp.MustCompile(`^\$\{[A-Z_][A-Z0-9_]*\}$`)

func TestDatasourceProvisioning(t *testing.T) {
	p := readDatasourceProvisioning(t)
	if p.APIVersion != 1 || len(p.Datasources) != 1 {
		t.Fatalf("apiVersion %d with %d data sources, want 1 and 1", p.APIVersion, len(p.Datasources))
	}
	ds := p.Datasources[0]
	if ds.Type != pluginID(t) {
		t.Errorf("type %q, want the plugin id %q", ds.Type, pluginID(t))
	}
	if dash := readDashboard(t); len(dash.Panels) == 0 || dash.Panels[0].Datasource == nil || dash.Panels[0].Datasource.UID != ds.UID {
		t.Errorf("uid %q is not the one the dashboard's panels use", ds.UID)
	}
	got := []any{ds.Name, ds.UID, ds.Access, ds.IsDefault, ds.Editable, ds.JSONData.DefaultProject, ds.JSONData.Timezone, ds.JSONData.Language}
	if diff := cmp.Diff([]any{"Velo", "velo", "proxy", true, false, "wl", "Europe/Rome", "it"}, got); diff != "" {
		t.Errorf("(name, uid, access, isDefault, editable, defaultProject, timezone, language) (-want +got):\n%s", diff)
	}
	if _, err := time.LoadLocation(ds.JSONData.Timezone); err != nil {
		t.Errorf("timezone: %v", err)
	}
	if !envRef.MatchString(ds.JSONData.URL) {
		t.Errorf("jsonData.url %q is not an environment reference ${...}", ds.JSONData.URL)
	}
	if tok := ds.SecureJSONData.Token; !envRef.MatchString(tok) || strings.Contains(tok, "velo_") {
		t.Errorf("secureJsonData.token is not an environment reference ${...}: a token must never be written in the file")
	}
	if ds.SecureJSONData.Token == ds.JSONData.URL {
		t.Errorf("the token and the URL come from the same variable")
	}
}

func TestDashboardProvisioning(t *testing.T) {
	var p dashboardProvisioning
	decodeYAML(t, providerPath, &p)
	if p.APIVersion != 1 || len(p.Providers) != 1 {
		t.Fatalf("apiVersion %d with %d providers, want 1 and 1", p.APIVersion, len(p.Providers))
	}
	pr := p.Providers[0]
	if pr.Name != "Velo" || pr.Folder != "Velo" || pr.Type != "file" {
		t.Errorf("name %q, folder %q, type %q; want Velo, Velo, file", pr.Name, pr.Folder, pr.Type)
	}
	// The documented rule (velo.yml's comment, docs/grafana.md): the dashboards' JSON
	// files go to the `velo` directory beside this file in Grafana's provisioning tree.
	const installDir = "/etc/grafana/provisioning/dashboards/velo"
	if path := filepath.ToSlash(filepath.Clean(pr.Options.Path)); !filepath.IsAbs(pr.Options.Path) || !strings.HasSuffix(path, "/dashboards/velo") {
		t.Errorf("options.path %q is not <provisioning>/dashboards/velo", pr.Options.Path)
	}
	if pr.Options.Path != installDir {
		t.Errorf("options.path %q, the documented install directory is %s", pr.Options.Path, installDir)
	}
	if doc, err := os.ReadFile(grafanaDocPath); err != nil {
		t.Errorf("the install directory is documented in %s: %v", grafanaDocPath, err)
	} else if !bytes.Contains(doc, []byte(installDir)) {
		t.Errorf("%s does not say where the dashboards go (%s)", grafanaDocPath, installDir)
	}

	// Every dashboard the provider would load is valid JSON with a title and a uid of its
	// own.
	files, err := filepath.Glob(filepath.Join(filepath.Dir(providerPath), "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards beside %s (%v)", providerPath, err)
	}
	uids := map[string]string{}
	for _, f := range files {
		var d dashboardJSON
		if err := json.Unmarshal(readFile(t, f), &d); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: no uid or title", f)
		}
		if other, ok := uids[d.UID]; ok {
			t.Errorf("%s and %s share uid %q", f, other, d.UID)
		}
		uids[d.UID] = f
	}
	if _, ok := uids["velo-liste-di-attesa"]; !ok {
		t.Errorf("the provider's directory has no dashboard velo-liste-di-attesa")
	}
}

// TestGrafanaDocMatchesProvisioning checks that docs/grafana.md names what the files
// use: the plugin id, the environment variables, how to allow an unsigned plugin.
func TestGrafanaDocMatchesProvisioning(t *testing.T) {
	doc := string(readFile(t, grafanaDocPath))
	ds := readDatasourceProvisioning(t).Datasources[0]
	names := []string{pluginID(t), "allow_loading_unsigned_plugins", "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"}
	for _, v := range []string{ds.JSONData.URL, ds.SecureJSONData.Token} {
		// Only variable names: a literal value (TestDatasourceProvisioning's failure) must
		// not be printed.
		if envRef.MatchString(v) {
			names = append(names, strings.Trim(v, "${}"))
		}
	}
	for _, s := range names {
		if !strings.Contains(doc, s) {
			t.Errorf("%s does not mention %s", grafanaDocPath, s)
		}
	}
}

// TestPluginJSON checks the frontend's plugin.json for what a backend data source with
// alerting needs and what the provisioning assumes.
func TestPluginJSON(t *testing.T) {
	b, err := os.ReadFile(pluginPath)
	if err != nil {
		t.Fatal(err)
	}
	checkPluginJSON(t, b)
}

func checkPluginJSON(t *testing.T, b []byte) {
	t.Helper()
	var p struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		Name       string `json:"name"`
		Backend    bool   `json:"backend"`
		Alerting   bool   `json:"alerting"`
		Executable string `json:"executable"`
		Info       struct {
			Logos struct {
				Small string `json:"small"`
				Large string `json:"large"`
			} `json:"logos"`
		} `json:"info"`
		Dependencies struct {
			GrafanaDependency string `json:"grafanaDependency"`
		} `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: %v", pluginPath, err)
	}
	// Grafana's plugin id rule for data sources (plugin.schema.json).
	if !regexp.MustCompile(`^[0-9a-z]+\-([0-9a-z]+\-)?datasource$`).MatchString(p.ID) {
		t.Errorf("id %q is not <org>-[<name>-]datasource", p.ID)
	}
	got := []any{p.Type, p.Backend, p.Alerting, p.Executable}
	if diff := cmp.Diff([]any{"datasource", true, true, "gpx_velo"}, got); diff != "" {
		t.Errorf("(type, backend, alerting, executable) (-want +got):\n%s", diff)
	}
	if p.Name == "" {
		t.Errorf("no name")
	}
	for _, logo := range []string{p.Info.Logos.Small, p.Info.Logos.Large} {
		if logo == "" {
			t.Errorf("info.logos: small and large are required")
			continue
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(pluginPath), logo)); err != nil {
			t.Errorf("info.logos: %v", err)
		}
	}
	if strings.TrimSpace(p.Dependencies.GrafanaDependency) == "" {
		t.Errorf("no dependencies.grafanaDependency")
	}
}

// grafanaVersion is the Grafana version the plugin is built against: the version of the
// @grafana packages in package.json, which must all be the same.
func grafanaVersion(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("package.json")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatalf("package.json: %v", err)
	}
	var version string
	for _, name := range []string{"@grafana/data", "@grafana/runtime", "@grafana/schema", "@grafana/ui"} {
		v := pkg.Dependencies[name]
		if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
			t.Fatalf("package.json: %s is %q, want an exact version", name, v)
		}
		if version != "" && v != version {
			t.Fatalf("package.json: %s is %s, the other @grafana packages %s", name, v, version)
		}
		version = v
	}
	return version
}

// TestGrafanaVersionAgrees checks that the Grafana version the plugin needs, the one the
// docs start in Docker, and the one the test harness announces to the plugin are the
// version package.json builds the frontend against.
func TestGrafanaVersionAgrees(t *testing.T) {
	version := grafanaVersion(t)
	b, err := os.ReadFile(pluginPath)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Dependencies struct {
			GrafanaDependency string `json:"grafanaDependency"`
		} `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: %v", pluginPath, err)
	}
	if p.Dependencies.GrafanaDependency != ">="+version {
		t.Errorf("%s: grafanaDependency %q, want >=%s (package.json)", pluginPath, p.Dependencies.GrafanaDependency, version)
	}
	for path, want := range map[string][]string{
		grafanaDocPath:    {"grafana/grafana:" + version + "\n", "Grafana " + version + " or later"},
		"src/README.md":   {"Grafana " + version + " or later"},
		"harness_test.go": {`"GF_VERSION=" + grafanaVersion(t)`},
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range want {
			if !strings.Contains(string(b), s) {
				t.Errorf("%s does not say %q", path, strings.TrimSpace(s))
			}
		}
		if m := regexp.MustCompile(`[Gg]rafana(?:/grafana:| )(\d+\.\d+(?:\.\d+)?)`).FindAllStringSubmatch(string(b), -1); len(m) > 0 {
			for _, v := range m {
				if !strings.HasPrefix(version, v[1]) {
					t.Errorf("%s names Grafana %s; package.json builds against %s", path, v[1], version)
				}
			}
		}
	}
}

// englishDashboardPath is the English twin of dashboardPath: the same dashboard, its
// titles and descriptions in English (docs/grafana.md#languages).
const englishDashboardPath = "provisioning/dashboards/waiting-lists.json"

// TestDashboardEnglishTwin: the English dashboard is the Italian one with its words
// translated and nothing else changed — the same panels, queries, units, thresholds and
// mappings (so every test of the Italian dashboard holds for it, and opening both spends
// the budget once: the queries are the same) — and every title, description, tag and
// column name a viewer reads is translated, under a uid of its own.
func TestDashboardEnglishTwin(t *testing.T) {
	var it, en any
	if err := json.Unmarshal(readFile(t, dashboardPath), &it); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(readFile(t, englishDashboardPath), &en); err != nil {
		t.Fatal(err)
	}
	// The paths a translation may change: the dashboard's uid, title, description and
	// tags; each panel's title and description; display names (defaults and overrides).
	textRE := regexp.MustCompile(`^(uid|title|description|tags\[\d+\]|panels\[\d+\]\.(title|description|fieldConfig\.defaults\.displayName))$`)
	overrideRE := regexp.MustCompile(`^panels\[(\d+)\]\.fieldConfig\.overrides\[(\d+)\]\.properties\[(\d+)\]\.value$`)
	panels := it.(map[string]any)["panels"].([]any)
	textPath := func(path string) bool {
		if textRE.MatchString(path) {
			return true
		}
		m := overrideRE.FindStringSubmatch(path)
		if m == nil {
			return false
		}
		at := func(s string) int { n, _ := strconv.Atoi(s); return n }
		o := panels[at(m[1])].(map[string]any)["fieldConfig"].(map[string]any)["overrides"].([]any)[at(m[2])]
		prop := o.(map[string]any)["properties"].([]any)[at(m[3])].(map[string]any)
		return prop["id"] == "displayName"
	}
	translated := 0
	var walk func(path string, a, b any)
	walk = func(path string, a, b any) {
		switch a := a.(type) {
		case map[string]any:
			bm, ok := b.(map[string]any)
			if !ok || len(bm) != len(a) {
				t.Errorf("%s: the English dashboard has another shape", path)
				return
			}
			for k, v := range a {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, v, bm[k])
			}
		case []any:
			bl, ok := b.([]any)
			if !ok || len(bl) != len(a) {
				t.Errorf("%s: the English dashboard has another shape", path)
				return
			}
			for i := range a {
				walk(fmt.Sprintf("%s[%d]", path, i), a[i], bl[i])
			}
		default:
			as, isText := a.(string)
			bs, _ := b.(string)
			if isText && textPath(path) {
				switch {
				case as != bs:
					translated++
				case as != "velo" && as != "cup" && regexp.MustCompile(`\p{Ll}{4,}`).MatchString(as):
					t.Errorf("%s: %q is not translated", path, as)
				}
				return
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s: the English dashboard changes %v to %v; only words may change", path, a, b)
			}
		}
	}
	walk("", it, en)
	if translated < 20 {
		t.Errorf("%d texts translated, want every title, description and column name (over 20)", translated)
	}
	var d dashboardJSON
	if err := json.Unmarshal(readFile(t, englishDashboardPath), &d); err != nil {
		t.Fatal(err)
	}
	if d.UID != "velo-waiting-lists" || d.Title != "Waiting lists" {
		t.Errorf("uid %q, title %q", d.UID, d.Title)
	}
	// Words a translation leaves behind.
	for _, italian := range []string{"Quota", "Prenotazioni", "Attesa", "residuo", "IC 95%", "differenzialmente", "progetto", "giorni"} {
		for _, p := range d.Panels {
			if strings.Contains(p.Title+" "+p.Description, italian) {
				t.Errorf("panel %q still says %q", p.Title, italian)
			}
		}
	}
}
