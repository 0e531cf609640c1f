package notebooksapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/release"
)

// Media types of a release.
const (
	mediaJSON  = "application/json"
	mediaCSV   = "text/csv"
	mediaArrow = "application/vnd.apache.arrow.stream"
)

// QueryRequest is the body of POST /v1/queries.
type QueryRequest struct {
	SQL     string   `json:"sql"`
	Project string   `json:"project"`
	Epsilon *float64 `json:"epsilon,omitempty"`
	Delta   *float64 `json:"delta,omitempty"`
	// Bounds clamp the named output aggregates: {"avg_wait": [0, 365]}.
	Bounds               map[string][2]float64 `json:"bounds,omitempty"`
	MaxGroupsContributed int                   `json:"max_groups_contributed,omitempty"`
	DryRun               bool                  `json:"dry_run,omitempty"`
	// ClampToRange moves released values and interval ends into the range each aggregate
	// can take (counts ≥ 0, shares in [0, 1]): post-processing, flagged in the release.
	ClampToRange bool `json:"clamp_to_range,omitempty"`
	// Target is "data" (the default) or "dummy": the dataset's dummy twin, made from the
	// catalog alone, answering exactly and for free (docs/clients.md#dummy-data).
	Target string `json:"target,omitempty"`
}

// dummyTarget reads a target: "" and "data" are the data, "dummy" the dummy twin.
func dummyTarget(target, field string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(target)) {
	case "", "data":
		return false, nil
	case "dummy":
		return true, nil
	}
	p := problem(http.StatusBadRequest, CodeInvalidRequest, "%s must be \"data\" or \"dummy\", got %q", field, target)
	p.Field = field
	return false, p
}

// query runs one DP query for a researcher or official and sends the release in the
// format the Accept header asks for.
func (s *Server) query(w http.ResponseWriter, r *http.Request, u *User) error {
	// Before anything is charged: a release the client cannot take is never made.
	media, err := negotiate(r.Header.Get("Accept"))
	if err != nil {
		return err
	}
	var req QueryRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	setProject(r, req.Project)
	switch {
	case !u.Role.queries():
		s.metrics.refusal(CodeForbidden)
		return problem(http.StatusForbidden, CodeForbidden, "the %s role cannot send queries", u.Role)
	case strings.TrimSpace(req.SQL) == "":
		return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Detail: "sql is required", Field: "sql"}
	case req.Project == "":
		return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Detail: "project is required", Field: "project"}
	case !u.member(req.Project):
		s.metrics.refusal(CodeForbidden)
		return problem(http.StatusForbidden, CodeForbidden, "you are not a member of project %q", req.Project)
	}
	dummy, err := dummyTarget(req.Target, "target")
	if err != nil {
		return err
	}
	// The engine takes one of limits.max_concurrent_queries slots for a query that reads
	// data, and refuses it with a *query.BusyError (429) when none frees within
	// limits.queue_timeout, before anything is charged. A query answered from the release
	// cache takes no slot (a dashboard's refresh is never refused), and identical queries
	// running at once are answered once.
	s.queries.Add(1)
	start := time.Now()
	rel, err := s.eng.Query(r.Context(), query.Request{
		SQL: req.SQL, Project: req.Project, Actor: "user:" + u.Name,
		Epsilon: req.Epsilon, Delta: req.Delta, Bounds: req.Bounds,
		MaxGroupsContributed: req.MaxGroupsContributed, DryRun: req.DryRun, ClampToRange: req.ClampToRange,
		Dummy: dummy,
	})
	s.queries.Done()
	if err != nil {
		p := asProblem(err)
		if p.Status >= 500 {
			s.metrics.query("failed", time.Since(start), 0)
		} else {
			s.metrics.refusal(p.Code)
		}
		return err
	}
	outcome, spent := "released", rel.Epsilon
	switch {
	case rel.DryRun:
		outcome, spent = "dry_run", 0
	case rel.Dummy:
		outcome, spent = "dummy", 0
	case rel.Cached:
		outcome, spent = "cached", 0
	}
	s.metrics.query(outcome, time.Since(start), spent)
	logExtra(r, "release_id", rel.ReleaseID, "outcome", outcome, "epsilon", rel.Epsilon, "delta", rel.Delta, "format", media)
	return writeRelease(w, rel, media)
}

// writeRelease encodes the release fully before sending it, so that an encoding failure
// is a clean error and never half a body.
func writeRelease(w http.ResponseWriter, rel *release.Release, media string) error {
	var buf bytes.Buffer
	var err error
	ct := media
	switch media {
	case mediaCSV:
		ct = "text/csv; charset=utf-8"
		err = rel.WriteCSV(&buf)
	case mediaArrow:
		err = writeArrow(&buf, rel)
	default:
		var b []byte
		if b, err = json.Marshal(rel); err == nil {
			buf.Write(append(b, '\n'))
		}
	}
	if err != nil {
		return fmt.Errorf("encode release %s as %s: %w", rel.ReleaseID, media, err)
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// negotiate picks the release format from an Accept header: the supported type with the
// highest q (ties: JSON, CSV, Arrow). No header, */* and application/* mean JSON.
func negotiate(accept string, extra ...string) (string, error) {
	if strings.TrimSpace(accept) == "" {
		return mediaJSON, nil
	}
	best, bestQ := "", 0.0
	prefer := append([]string{mediaJSON, mediaCSV, mediaArrow}, extra...)
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		var cand string
		switch mt {
		case mediaJSON, "*/*", "application/*":
			cand = mediaJSON
		case mediaCSV, "text/*":
			cand = mediaCSV
		case mediaArrow:
			cand = mediaArrow
		default:
			if !slices.Contains(extra, mt) {
				continue
			}
			cand = mt
		}
		if q > bestQ || (q == bestQ && q > 0 && slices.Index(prefer, cand) < slices.Index(prefer, best)) {
			best, bestQ = cand, q
		}
	}
	if best == "" || bestQ <= 0 {
		return "", problem(http.StatusNotAcceptable, CodeNotAcceptable, "a release is available as %s or %s", strings.Join(prefer[:len(prefer)-1], ", "), prefer[len(prefer)-1])
	}
	return best, nil
}
