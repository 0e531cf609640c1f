package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/velo-fse/velo/release"
)

// veloClient speaks to Velo's HTTP API (docs/api.md) with the data source's token.
type veloClient struct {
	base  *url.URL
	token string
	http  *http.Client
	agent string
	lang  string // Accept-Language, when set
}

// maxResponse bounds what the plugin reads of one Velo answer.
const maxResponse = 64 << 20

// queryRequest is the body of POST /v1/queries.
type queryRequest struct {
	Project string   `json:"project"`
	SQL     string   `json:"sql"`
	Epsilon *float64 `json:"epsilon,omitempty"`
	Delta   *float64 `json:"delta,omitempty"`
	DryRun  bool     `json:"dry_run,omitempty"`
	// Target is "dummy" for the dataset's dummy twin (the editor's preview), else the data.
	Target string `json:"target,omitempty"`
}

// budget is an (epsilon, delta) pair of a project's status.
type budget struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

// projectStatus is GET /v1/projects/{id}.
type projectStatus struct {
	ID      string `json:"id"`
	Total   budget `json:"total"`
	Spent   budget `json:"spent"`
	Left    budget `json:"left"`
	Queries int    `json:"queries"`
}

// catalogDoc is GET /v1/catalog: the tables and columns a project may read, and the
// public domains (reference data, never read off the data).
type catalogDoc struct {
	Tables []struct {
		Name    string `json:"name"`
		Columns []struct {
			Name   string `json:"name"`
			Domain string `json:"domain"`
		} `json:"columns"`
	} `json:"tables"`
	Domains map[string]struct {
		Source string `json:"source"`
		Values []any  `json:"values"`
	} `json:"domains"`
}

// identity is GET /v1/me.
type identity struct {
	User     string   `json:"user"`
	Role     string   `json:"role"`
	Projects []string `json:"projects"`
}

// veloError is a problem Velo reported (application/problem+json), or a transport
// failure (Status 0).
type veloError struct {
	Status   int
	Code     string
	Detail   string
	Position *int
	err      error
	// retryAfter is how long Velo asked to wait before trying a 429 again.
	retryAfter time.Duration
}

func (e *veloError) Error() string {
	switch {
	case e.err != nil:
		return "Velo could not be reached: " + e.err.Error()
	case e.Code == "":
		return fmt.Sprintf("Velo answered %d %s", e.Status, http.StatusText(e.Status))
	}
	msg := e.Detail
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Position != nil {
		msg += fmt.Sprintf(" (at byte %d of the SQL sent)", *e.Position)
	}
	return fmt.Sprintf("Velo: %s [%s]", msg, e.Code)
}

func (e *veloError) Unwrap() error { return e.err }

// status is the Grafana status for the error.
func (e *veloError) status() backend.Status {
	switch e.Status {
	case 0:
		return backend.StatusBadGateway
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
		return backend.StatusBadRequest
	case http.StatusUnauthorized:
		return backend.StatusUnauthorized
	case http.StatusForbidden, http.StatusConflict: // 409: the project's budget is spent
		return backend.StatusForbidden
	case http.StatusNotFound:
		return backend.StatusNotFound
	case http.StatusTooManyRequests:
		return backend.StatusTooManyRequests
	case http.StatusGatewayTimeout:
		return backend.StatusTimeout
	}
	if e.Status >= 500 {
		return backend.StatusBadGateway
	}
	return backend.StatusBadRequest
}

// query sends one query. The answer is read into release.Release, the type Velo's engine
// writes it from: package release links no cgo, so the plugin shares the contract without
// linking the engine (DuckDB).
func (c *veloClient) query(ctx context.Context, q queryRequest) (*release.Release, error) {
	var r release.Release
	return &r, c.do(ctx, http.MethodPost, "/v1/queries", q, &r)
}

func (c *veloClient) project(ctx context.Context, id string) (*projectStatus, error) {
	var p projectStatus
	return &p, c.do(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(id), nil, &p)
}

func (c *veloClient) catalog(ctx context.Context, project string) (*catalogDoc, error) {
	var cat catalogDoc
	return &cat, c.do(ctx, http.MethodGet, "/v1/catalog?project="+url.QueryEscape(project), nil, &cat)
}

func (c *veloClient) me(ctx context.Context) (*identity, error) {
	var m identity
	return &m, c.do(ctx, http.MethodGet, "/v1/me", nil, &m)
}

func (c *veloClient) healthz(ctx context.Context) error {
	var h struct{ Status string }
	return c.do(ctx, http.MethodGet, "/healthz", nil, &h)
}

// Velo answers 429 when its query slots are full (a dashboard opening many new panels at
// once), before anything is charged: the plugin waits as Retry-After says and tries again,
// a few times, so panels fill in instead of failing.
const (
	busyRetries  = 3
	maxRetryWait = 5 * time.Second
)

func (c *veloClient) do(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, method, path, payload, out)
		var ve *veloError
		if attempt == busyRetries || !errors.As(err, &ve) || ve.Status != http.StatusTooManyRequests {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(ve.retryAfter):
		}
	}
}

// once sends one request.
func (c *veloClient) once(ctx context.Context, method, path string, payload []byte, out any) error {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	path, query, _ := strings.Cut(path, "?")
	u := c.base.JoinPath(path)
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	if c.lang != "" {
		req.Header.Set("Accept-Language", c.lang)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the settings; the token never is in it
		}
		return &veloError{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return &veloError{err: err}
	}
	if len(b) > maxResponse {
		return &veloError{err: fmt.Errorf("answer larger than %d MiB", maxResponse>>20)}
	}
	if resp.StatusCode/100 != 2 {
		ve := &veloError{Status: resp.StatusCode, retryAfter: time.Second}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
			ve.retryAfter = min(time.Duration(secs)*time.Second, maxRetryWait)
		}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
			var p struct {
				Code     string `json:"code"`
				Detail   string `json:"detail"`
				Title    string `json:"title"`
				Position *int   `json:"position"`
			}
			if json.Unmarshal(b, &p) == nil {
				ve.Code, ve.Detail, ve.Position = p.Code, p.Detail, p.Position
				if ve.Detail == "" {
					ve.Detail = p.Title
				}
			}
		}
		return ve
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return &veloError{err: fmt.Errorf("unreadable answer from %s: %w", path, err)}
	}
	return nil
}
