// Package plugin is Velo's Grafana data source backend: a thin client of Velo's HTTP API.
// Every privacy rule is enforced by Velo (the budget, the ledger, the release cache); the
// plugin expands time macros to coarse public buckets, sends each panel query to
// POST /v1/queries with the data source's token and turns the release into frames.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/httpclient"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/experimental/concurrent"
)

// ID is the plugin id (plugin.json).
const ID = "velo-fse-datasource"

// Version is set at build time.
var Version = "dev"

// Query types.
const (
	querySQL    = "sql"
	queryBudget = "budget"
	queryDomain = "domain" // a column's public domain, for dashboard variables
)

// concurrency is how many panel queries of one request go to Velo at once; Velo has its
// own cap and answers 429 beyond it.
const concurrency = 4

// Settings are the data source's settings: jsonData plus the token from secureJsonData.
type Settings struct {
	URL            string `json:"url"`
	DefaultProject string `json:"defaultProject"`
	Timezone       string `json:"timezone"`
	// Language is the language Velo answers errors in (it or en; Accept-Language), so that
	// a panel's refusal reads in the officials' language; empty: Velo's default, English.
	Language string `json:"language"`
	token    string
}

// QueryModel is one panel query (the frontend's VeloQuery).
type QueryModel struct {
	QueryType string   `json:"queryType"`
	SQL       string   `json:"sql"`
	Project   string   `json:"project"`
	Epsilon   *float64 `json:"epsilon"`
	Delta     *float64 `json:"delta"`
	Format    string   `json:"format"`
	// Target is where an SQL query runs: "dummy" (the dataset's dummy twin: the query
	// editor's preview, set by the frontend) or "data" / "" (the data).
	Target string `json:"target"`
	// Table and Column name the column of a domain query.
	Table  string `json:"table"`
	Column string `json:"column"`
}

// Datasource is one configured Velo data source.
type Datasource struct {
	settings Settings
	loc      *time.Location
	client   *veloClient
	// configErr is a settings problem, reported by CheckHealth and by every query.
	configErr error
}

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// NewDatasource makes a data source instance from its settings. Bad settings do not fail
// here: they are reported by CheckHealth ("Save & test") and by every query, so that the
// person configuring it reads what is wrong.
func NewDatasource(ctx context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	ds := &Datasource{}
	ds.settings, ds.loc, ds.configErr = parseSettings(s)
	if ds.configErr != nil {
		return ds, nil
	}
	opts, err := s.HTTPClientOptions(ctx)
	if err != nil {
		return nil, fmt.Errorf("http client options: %w", err)
	}
	opts.Timeouts.Timeout = 2 * time.Minute // Velo's own query timeout is shorter
	hc, err := httpclient.New(opts)
	if err != nil {
		return nil, fmt.Errorf("http client: %w", err)
	}
	base, _ := url.Parse(ds.settings.URL) // checked in parseSettings
	ds.client = &veloClient{base: base, token: ds.settings.token, http: hc, agent: "velo-grafana-datasource/" + Version, lang: ds.settings.Language}
	return ds, nil
}

func parseSettings(s backend.DataSourceInstanceSettings) (Settings, *time.Location, error) {
	var st Settings
	if len(s.JSONData) > 0 {
		if err := json.Unmarshal(s.JSONData, &st); err != nil {
			return st, nil, fmt.Errorf("the data source settings (jsonData) are not valid JSON: %w", err)
		}
	}
	if st.URL == "" {
		st.URL = s.URL // Grafana's own URL field, if jsonData has none
	}
	st.token = s.DecryptedSecureJSONData["token"]
	if st.Timezone == "" {
		st.Timezone = "Europe/Rome"
	}
	loc, err := time.LoadLocation(st.Timezone)
	if err != nil {
		return st, nil, fmt.Errorf("timezone %q is not an IANA time zone (as Europe/Rome)", st.Timezone)
	}
	if st.Language != "" && st.Language != "it" && st.Language != "en" {
		return st, loc, fmt.Errorf("language %q: want it (Italian) or en (English), or leave it out (English)", st.Language)
	}
	switch u, err := url.Parse(st.URL); {
	case st.URL == "":
		return st, loc, errors.New("the Velo URL is not set (jsonData.url, as http://velo.example:8080)")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return st, loc, fmt.Errorf("the Velo URL %q is not an http(s) URL", st.URL)
	case u.User != nil:
		return st, loc, errors.New("the Velo URL must not carry credentials: put the token in the token field")
	case st.token == "":
		return st, loc, errors.New("the Velo token is not set (secureJsonData.token: the token of a Velo user with the official role)")
	}
	return st, loc, nil
}

// Dispose is called when the settings change and a new instance replaces this one.
func (d *Datasource) Dispose() {
	if d.client != nil {
		d.client.http.CloseIdleConnections()
	}
}

// QueryData runs each panel query against Velo; errors are per query (RefID).
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	return concurrent.QueryData(ctx, req, func(ctx context.Context, q concurrent.Query) backend.DataResponse {
		return d.query(ctx, q.DataQuery)
	}, concurrency)
}

func (d *Datasource) query(ctx context.Context, q backend.DataQuery) backend.DataResponse {
	if d.configErr != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, "Velo data source: "+d.configErr.Error())
	}
	var m QueryModel
	if err := json.Unmarshal(q.JSON, &m); err != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, "the query is not valid JSON: "+err.Error())
	}
	if m.QueryType == "" {
		m.QueryType = q.QueryType
	}
	if m.Project == "" {
		m.Project = d.settings.DefaultProject
	}
	if m.Project == "" {
		return userError("no project: set one on the query or a default project in the data source")
	}
	switch m.QueryType {
	case queryBudget:
		p, err := d.client.project(ctx, m.Project)
		if err != nil {
			return veloResponse(err)
		}
		return backend.DataResponse{Frames: data.Frames{budgetFrame(p, q.RefID)}}
	case queryDomain:
		cat, err := d.client.catalog(ctx, m.Project)
		if err != nil {
			return veloResponse(err)
		}
		f, err := domainFrame(cat, m.Table, m.Column, q.RefID)
		if err != nil {
			return userError(err.Error())
		}
		return backend.DataResponse{Frames: data.Frames{f}}
	case querySQL, "":
	default:
		return userError(fmt.Sprintf("unknown query type %q: sql, budget or domain", m.QueryType))
	}
	if m.Format == "" {
		m.Format = formatTable
	}
	if m.Format != formatTable && m.Format != formatTimeSeries {
		return userError(fmt.Sprintf("unknown format %q: table or time_series", m.Format))
	}
	if strings.TrimSpace(m.SQL) == "" {
		return userError("the query has no SQL")
	}
	switch m.Target {
	case "", "data":
		m.Target = ""
	case "dummy":
	default:
		return userError(fmt.Sprintf("unknown target %q: data or dummy", m.Target))
	}
	exp, err := ExpandMacros(m.SQL, q.TimeRange, q.Interval, d.loc)
	if err != nil {
		return userError(err.Error())
	}
	rel, err := d.client.query(ctx, queryRequest{Project: m.Project, SQL: exp.SQL, Epsilon: m.Epsilon, Delta: m.Delta, Target: m.Target})
	if err != nil {
		return veloResponse(err)
	}
	frame, err := releaseFrame(rel, q.RefID, m.Format, exp.SQL)
	if err != nil {
		return userError(err.Error())
	}
	return backend.DataResponse{Frames: data.Frames{frame}}
}

func userError(msg string) backend.DataResponse {
	return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, msg)
}

// veloResponse is the per-query error for a failed call to Velo: Velo's refusals
// (budget exhausted, SQL rejected, ...) are downstream errors with Velo's public text.
func veloResponse(err error) backend.DataResponse {
	var ve *veloError
	if errors.As(err, &ve) {
		return backend.ErrDataResponseWithSource(ve.status(), backend.ErrorSourceDownstream, ve.Error())
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return backend.ErrDataResponseWithSource(backend.StatusTimeout, backend.ErrorSourceDownstream, "the query was cancelled or timed out: "+err.Error())
	}
	return backend.ErrDataResponseWithSource(backend.StatusInternal, backend.ErrorSourcePlugin, err.Error())
}

// CheckHealth ("Save & test") checks the settings, that Velo answers, that the token is
// valid for a role that may query, and that the default project is one of the token's.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	fail := func(msg string) (*backend.CheckHealthResult, error) {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: msg}, nil
	}
	if d.configErr != nil {
		return fail(d.configErr.Error())
	}
	if err := d.client.healthz(ctx); err != nil {
		return fail(fmt.Sprintf("Velo at %s does not answer /healthz: %v", d.settings.URL, err))
	}
	me, err := d.client.me(ctx)
	var ve *veloError
	switch {
	case errors.As(err, &ve) && ve.Status == http.StatusUnauthorized:
		return fail("Velo does not accept the token: it is unknown, revoked or mistyped")
	case err != nil:
		return fail(err.Error())
	case me.Role != "official" && me.Role != "researcher":
		return fail(fmt.Sprintf("the token belongs to a Velo %s, who may not query: use an official's token", me.Role))
	}
	msg := fmt.Sprintf("Connected to Velo as %s (%s)", me.User, me.Role)
	if p := d.settings.DefaultProject; p != "" {
		if !slices.Contains(me.Projects, p) {
			return fail(fmt.Sprintf("the token's user %s is not a member of the default project %q (member of: %s)", me.User, p, strings.Join(me.Projects, ", ")))
		}
		st, err := d.client.project(ctx, p)
		if err != nil {
			return fail(err.Error())
		}
		msg += fmt.Sprintf("; project %s has ε %s of %s left", p, fmtNum(st.Left.Epsilon), fmtNum(st.Total.Epsilon))
	}
	return &backend.CheckHealthResult{Status: backend.HealthStatusOk, Message: msg}, nil
}
