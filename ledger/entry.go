package ledger

import (
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Entry is one ledger entry as the DPO reads it. Which fields are set depends on Kind:
//
//   - project: Definition.
//   - grant: Epsilon, Delta (added), Reason.
//   - charge: Epsilon, Delta (the cost), SQL (the query's canonical form, printed from the
//     checked plan: its identity), SQLHash (of SQL: the release cache's key), Text (the exact
//     text the user sent, which the DPO reads), Options, DatasetVersion, Mechanisms.
//   - refund: ChargeSeq, Epsilon, Delta (returned), Reason.
//   - release: ChargeSeq, ResultHash (SHA-256 of Release), Release.
//   - dummy: SQL, SQLHash, Text, Options, DatasetVersion (the dummy twin's), ResultHash,
//     Release: a query answered on the dummy twin, free (KindDummy).
//   - recovery: TruncatedAt, TruncatedBytes, Reason.
//   - request: Definition (the project as requested, its permit included).
//   - approve: Definition (as approved, amendments included), Reason (optional).
//   - reject, suspend: Reason. resume: Reason (optional).
//
// Hash is SHA-256("velo/ledger/v1\x00" || PrevHash || body), hex-encoded. Slices are shared
// with the ledger: do not modify them.
type Entry struct {
	Seq            uint64          `json:"seq"`
	Kind           string          `json:"kind"`
	Time           time.Time       `json:"time"`
	Actor          string          `json:"actor"`
	Project        string          `json:"project,omitempty"`
	Definition     *Project        `json:"definition,omitempty"`
	Epsilon        float64         `json:"epsilon,omitempty"`
	Delta          float64         `json:"delta,omitempty"`
	SQL            string          `json:"sql,omitempty"`
	SQLHash        string          `json:"sql_hash,omitempty"`
	Options        string          `json:"options,omitempty"`
	DatasetVersion string          `json:"dataset_version,omitempty"`
	Mechanisms     json.RawMessage `json:"mechanisms,omitempty"`
	ChargeSeq      uint64          `json:"charge_seq,omitempty"`
	ResultHash     string          `json:"result_hash,omitempty"`
	Release        json.RawMessage `json:"release,omitempty"`
	Reason         string          `json:"reason,omitempty"`
	TruncatedAt    int64           `json:"truncated_at,omitempty"`
	TruncatedBytes int64           `json:"truncated_bytes,omitempty"`
	Text           string          `json:"text,omitempty"`
	PrevHash       string          `json:"prev_hash"`
	Hash           string          `json:"hash"`
}

func entryOf(r *record, h [32]byte) Entry {
	e := Entry{
		Seq: r.Seq, Kind: r.Kind, Time: r.Time, Actor: r.Actor, Project: r.Project,
		Epsilon: r.Epsilon.float(), Delta: r.Delta.float(),
		SQL: r.SQL, SQLHash: r.SQLHash, Options: r.Options, DatasetVersion: r.DatasetVersion,
		Mechanisms: r.Mechanisms, ChargeSeq: r.Charge, ResultHash: r.ResultHash, Release: r.Release,
		Reason: r.Reason, TruncatedAt: r.TruncatedAt, TruncatedBytes: r.TruncatedBytes,
		Text:     r.Text,
		PrevHash: r.Prev, Hash: hex.EncodeToString(h[:]),
	}
	if r.Definition != nil {
		p := r.Definition.project(r.Project, r.Time)
		e.Definition = &p
	}
	return e
}

// WriteNDJSON writes entries as one JSON object per line, releases included.
func WriteNDJSON(w io.Writer, entries []Entry) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range entries {
		if err := enc.Encode(&entries[i]); err != nil {
			return fmt.Errorf("export entry %d: %w", entries[i].Seq, err)
		}
	}
	return nil
}

// CSVHeader is the header row WriteCSV writes. The release itself is left out (its
// result_hash is there); the project definition is a JSON cell.
var CSVHeader = []string{
	"seq", "kind", "time", "actor", "project", "epsilon", "delta", "sql", "sql_hash", "options",
	"dataset_version", "mechanisms", "charge_seq", "result_hash", "reason", "truncated_at",
	"truncated_bytes", "definition", "prev_hash", "hash", "text",
}

// WriteCSV writes entries as CSV with CSVHeader.
func WriteCSV(w io.Writer, entries []Entry) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	num := func(e Entry, f float64) string {
		if e.Kind != KindGrant && e.Kind != KindCharge && e.Kind != KindRefund {
			return ""
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	intOrEmpty := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	for _, e := range entries {
		var def string
		if e.Definition != nil {
			b, err := json.Marshal(e.Definition)
			if err != nil {
				return err
			}
			def = string(b)
		}
		row := []string{
			strconv.FormatUint(e.Seq, 10), e.Kind, e.Time.Format(time.RFC3339Nano), e.Actor, e.Project,
			num(e, e.Epsilon), num(e, e.Delta), e.SQL, e.SQLHash, e.Options, e.DatasetVersion,
			string(e.Mechanisms), intOrEmpty(int64(e.ChargeSeq)), e.ResultHash, e.Reason,
			intOrEmpty(e.TruncatedAt), intOrEmpty(e.TruncatedBytes), def, e.PrevHash, e.Hash, e.Text,
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
