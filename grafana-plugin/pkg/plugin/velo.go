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
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// veloClient speaks to Velo's HTTP API (docs/api.md) with the data source's token.
type veloClient struct {
	base  *url.URL
	token string
	http  *http.Client
	agent string
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
}

// release is the part of Velo's release (DESIGN.md §5) the plugin uses. It is the JSON
// contract, read on its own rather than through query.Release: the plugin must not link
// Velo's engine (DuckDB, cgo) to read an answer.
type release struct {
	ReleaseID      string          `json:"release_id"`
	Project        string          `json:"project"`
	DatasetVersion string          `json:"dataset_version"`
	Cached         bool            `json:"cached"`
	Columns        []releaseColumn `json:"columns"`
	Rows           [][]any         `json:"rows"`
	CI             [][]any         `json:"ci"`
	Confidence     float64         `json:"confidence"`
	Epsilon        float64         `json:"epsilon"`
	Delta          float64         `json:"delta"`
	BudgetLeft     budget          `json:"budget_left"`
	SQL            string          `json:"sql"`
}

type releaseColumn struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Kind      string `json:"kind"` // "key" or "dp"
	Aggregate string `json:"aggregate,omitempty"`
}

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

func (c *veloClient) query(ctx context.Context, q queryRequest) (*release, error) {
	var r release
	return &r, c.do(ctx, http.MethodPost, "/v1/queries", q, &r)
}

func (c *veloClient) project(ctx context.Context, id string) (*projectStatus, error) {
	var p projectStatus
	return &p, c.do(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(id), nil, &p)
}

func (c *veloClient) me(ctx context.Context) (*identity, error) {
	var m identity
	return &m, c.do(ctx, http.MethodGet, "/v1/me", nil, &m)
}

func (c *veloClient) healthz(ctx context.Context) error {
	var h struct{ Status string }
	return c.do(ctx, http.MethodGet, "/healthz", nil, &h)
}

func (c *veloClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := c.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	if body != nil {
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
		ve := &veloError{Status: resp.StatusCode}
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
