package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// KindDummy is a query answered on the dataset's dummy twin (docs/clients.md#dummy-data): it
// read no data, so it costs nothing and settles no charge. The entry records who asked what,
// the twin's dataset version and the release, with its hash, for the DPO to read. It holds no
// epsilon or delta, changes no budget and is never a cached release.
const KindDummy = "dummy"

// DummyRequest is a query answered on a dummy twin.
type DummyRequest struct {
	Actor   string
	Project string
	SQL     string // the canonical form, as for a charge
	Text    string // the exact text the user sent
	Options string
	// DatasetVersion is the twin's version (twin.Version), never the data's.
	DatasetVersion string
	Release        json.RawMessage
}

// Dummy records a dummy run after checking its project (ErrUnknownProject,
// ErrProjectExpired); it returns once the entry is durable.
func (l *Ledger) Dummy(ctx context.Context, req DummyRequest) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	r, err := dummyRecord(req)
	if err != nil {
		return Entry{}, err
	}
	e, err := l.append(r)
	if err != nil {
		return Entry{}, fmt.Errorf("ledger: dummy run of project %s: %w", req.Project, err)
	}
	return e, nil
}

// dummyRecord is the entry of a dummy run, as both ledgers append it.
func dummyRecord(req DummyRequest) (*record, error) {
	rel, err := compactJSON(req.Release)
	if err != nil {
		return nil, fmt.Errorf("ledger: dummy run of project %s: %w", req.Project, &FieldError{"release", err.Error()})
	}
	return &record{
		Kind: KindDummy, Actor: strings.TrimSpace(req.Actor), Project: req.Project,
		SQL: req.SQL, SQLHash: SQLHash(req.SQL), Text: req.Text, Options: req.Options,
		DatasetVersion: req.DatasetVersion, ResultHash: resultHash(rel), Release: rel,
	}, nil
}

// checkDummy is state.check for a dummy entry.
func (st *state) checkDummy(r *record) error {
	ps, err := st.project(r.Project)
	if err != nil {
		return err
	}
	if err := ps.inactive(r.Time); err != nil {
		return err
	}
	switch {
	case r.Epsilon != 0 || r.Delta != 0:
		return &FieldError{"epsilon", "a dummy run costs nothing"}
	case r.Charge != 0:
		return &FieldError{"charge", "a dummy run settles no charge"}
	case r.SQL == "" || !utf8.ValidString(r.SQL):
		return &FieldError{"sql", "required, as valid UTF-8"}
	case r.SQLHash != SQLHash(r.SQL):
		return &FieldError{"sql_hash", "does not match the SQL text"}
	case !utf8.ValidString(r.Text):
		return &FieldError{"text", "must be valid UTF-8"}
	case r.DatasetVersion == "":
		return &FieldError{"dataset_version", "required"}
	case len(r.Release) == 0 || !json.Valid(r.Release):
		return &FieldError{"release", "required, as JSON"}
	case r.ResultHash != resultHash(r.Release):
		return &FieldError{"result_hash", "does not match the release"}
	}
	return nil
}
