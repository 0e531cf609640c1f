package notebooksapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/query"
)

// HistoryEntry is one charge of a project, or one free dummy run, and what came of it.
type HistoryEntry struct {
	// Seq is the ledger entry of the charge (of the dummy run).
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Actor is who asked: user:NAME, operator:NAME.
	Actor string `json:"actor"`
	// Kind is query, marginals, synthetic or dummy (a query on the dummy twin, free).
	Kind string `json:"kind"`
	// SQL is the canonical form the ledger keys on; Text what was sent.
	SQL            string  `json:"sql"`
	Text           string  `json:"text,omitempty"`
	Epsilon        float64 `json:"epsilon"`
	Delta          float64 `json:"delta"`
	DatasetVersion string  `json:"dataset_version"`
	// Outcome: released; refunded (it failed before reading data, the budget was given
	// back); or no_release (running, or failed after reading data: the charge stands).
	Outcome      string `json:"outcome"`
	ReleaseID    string `json:"release_id,omitempty"`
	RefundReason string `json:"refund_reason,omitempty"`
}

// HistoryPage is a page of a project's history, oldest first.
type HistoryPage struct {
	Project string         `json:"project"`
	Charges []HistoryEntry `json:"charges"`
	// NextSinceSeq is the since_seq that asks for the entries after these.
	NextSinceSeq uint64 `json:"next_since_seq"`
	More         bool   `json:"more"`
}

// projectMember lets the DPO and the project's members through, for project id.
func projectMember(r *http.Request, u *User) (string, error) {
	if err := denyAdmin(u); err != nil {
		return "", err
	}
	id := r.PathValue("id")
	setProject(r, id)
	if u.Role != RoleDPO && !u.member(id) {
		return "", problem(http.StatusForbidden, CodeForbidden, "you are not a member of project %q", id)
	}
	return id, nil
}

// history sends what a project's budget paid for: every charge with its outcome and
// release id, and the free dummy runs (GET /v1/projects/{id}/history; the DPO and the
// project's members).
func (s *Server) history(w http.ResponseWriter, r *http.Request, u *User) error {
	id, err := projectMember(r, u)
	if err != nil {
		return err
	}
	since, limit, err := pageParams(r, 100, 1000)
	if err != nil {
		return err
	}
	if _, err := s.led.Project(id); err != nil {
		return err
	}
	entries := s.led.Entries(id, 0)
	// What came of each charge: its release or its refund, recorded after it.
	released := map[uint64]string{}
	refunded := map[uint64]string{}
	for _, e := range entries {
		switch e.Kind {
		case ledger.KindRelease:
			released[e.ChargeSeq] = releaseIDOf(e.Release)
		case ledger.KindRefund:
			refunded[e.ChargeSeq] = e.Reason
		}
	}
	page := HistoryPage{Project: id, Charges: []HistoryEntry{}, NextSinceSeq: since}
	for _, e := range entries {
		if e.Seq <= since || (e.Kind != ledger.KindCharge && e.Kind != ledger.KindDummy) {
			continue
		}
		if uint64(len(page.Charges)) == limit {
			page.More = true
			break
		}
		h := HistoryEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Kind: chargeKind(e), SQL: e.SQL, Text: e.Text,
			Epsilon: e.Epsilon, Delta: e.Delta, DatasetVersion: e.DatasetVersion, Outcome: "no_release"}
		if e.Kind == ledger.KindDummy {
			h.Outcome, h.ReleaseID = "released", query.DummyReleaseID(e.Seq)
		} else if rid, ok := released[e.Seq]; ok {
			h.Outcome, h.ReleaseID = "released", rid
		} else if reason, ok := refunded[e.Seq]; ok {
			h.Outcome, h.RefundReason = "refunded", reason
		}
		page.Charges = append(page.Charges, h)
		page.NextSinceSeq = e.Seq
	}
	return writeJSON(w, http.StatusOK, page)
}

// chargeKind is what a ledger entry paid for: a dummy run, or its charge's kind.
func chargeKind(e ledger.Entry) string {
	if e.Kind == ledger.KindDummy {
		return "dummy"
	}
	return query.ChargeKind(e.Options)
}

// releaseIDOf is a recorded release's release_id ("" if none). Releases record it first,
// so the rest of a large release is not read.
func releaseIDOf(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return ""
		}
		if k == "release_id" {
			var id string
			if dec.Decode(&id) != nil {
				return ""
			}
			return id
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

// getRelease sends a release of the project as the ledger recorded it (GET
// /v1/projects/{id}/releases/{release_id}; the DPO and the project's members): the same
// JSON its request was answered with then, at no cost. A synthetic release is its record;
// with Accept: application/vnd.apache.parquet, its rows, as its request was answered, if
// this server keeps them (query.Engine.SyntheticRelease).
func (s *Server) getRelease(w http.ResponseWriter, r *http.Request, u *User) error {
	id, err := projectMember(r, u)
	if err != nil {
		return err
	}
	rid := r.PathValue("release_id")
	seq, dummy, ok := query.ParseReleaseID(rid)
	notFound := problem(http.StatusNotFound, CodeNotFound, "project %s has no release %q", id, rid)
	if !ok {
		return notFound
	}
	if _, err := s.led.Project(id); err != nil {
		return err
	}
	for _, e := range s.led.Entries(id, max(seq, 1)-1) {
		var body json.RawMessage
		switch {
		case !dummy && e.Kind == ledger.KindRelease && e.ChargeSeq == seq && releaseIDOf(e.Release) == rid:
			body = e.Release
		case dummy && e.Kind == ledger.KindDummy && e.Seq == seq:
			// A dummy run is recorded before its entry's number, its id, is known.
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(e.Release, &fields); err != nil {
				return err
			}
			fields["release_id"], _ = json.Marshal(rid)
			if body, err = json.Marshal(fields); err != nil {
				return err
			}
		default:
			continue
		}
		if strings.Contains(r.Header.Get("Accept"), mediaParquet) {
			return s.sendSyntheticRows(w, r, rid, body)
		}
		logExtra(r, "release_id", rid, "outcome", "recorded")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(append(append([]byte(nil), body...), '\n'))
		return nil
	}
	return notFound
}

// syntheticRows is the engine's rebuilding of a synthetic release's rows from its record.
type syntheticRows interface {
	SyntheticRelease(recorded json.RawMessage) (*query.Synthetic, error)
}

// sendSyntheticRows answers a synthetic release's rows as Parquet, as POST /v1/synthetic
// did: 406 for another kind of release, 404 when this server does not keep its rows.
func (s *Server) sendSyntheticRows(w http.ResponseWriter, r *http.Request, rid string, recorded json.RawMessage) error {
	sr, ok := s.eng.(syntheticRows)
	if !query.IsSyntheticReleaseID(rid) || !ok {
		return problem(http.StatusNotAcceptable, CodeNotAcceptable, "release %s is available as %s only: Parquet is for the rows of synthetic releases", rid, mediaJSON)
	}
	syn, err := sr.SyntheticRelease(recorded)
	if errors.Is(err, query.ErrRowsNotKept) {
		return problem(http.StatusNotFound, CodeNotFound, "the rows of release %s are not kept on this server (its record is available as %s)", rid, mediaJSON)
	}
	if err != nil {
		return err
	}
	var pq bytes.Buffer
	if err := syn.WriteParquet(&pq); err != nil {
		return fmt.Errorf("encode synthetic %s: %w", rid, err)
	}
	logExtra(r, "release_id", rid, "outcome", "recorded", "format", mediaParquet)
	w.Header().Set("Content-Disposition", `attachment; filename="`+syn.Table+`-synthetic.parquet"`)
	return send(w, mediaParquet, pq.Bytes(), rid)
}
