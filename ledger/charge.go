package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// ChargeRequest is a query about to run.
type ChargeRequest struct {
	Actor   string
	Project string
	// SQL is the query's canonical form, printed from the checked plan: its identity. The
	// ledger keys the release cache by its SQLHash.
	SQL string
	// Text is the exact SQL text the user sent, kept for the DPO to read (optional).
	Text string
	// Options is the canonical options string (epsilon, delta, bounds ...), part of the cache key.
	Options        string
	DatasetVersion string
	// Cost is what the query declared (or the project's defaults, applied by the caller).
	// Epsilon must be > 0; both are rounded up to the ledger's units.
	Cost Budget
	// Mechanisms (the budget split, mechanism parameters) is recorded as given, whitespace
	// aside.
	Mechanisms json.RawMessage
}

// Charge is a durable charge: the handle for its Refund or Release.
type Charge struct {
	Seq            uint64
	Project        string
	Actor          string
	SQLHash        string
	Options        string
	DatasetVersion string
	Cost           Budget // as charged, after rounding up to the ledger's units
	Time           time.Time
}

// Charge checks the project (ErrUnknownProject, ErrProjectExpired), the per-query caps
// (ErrOverCap) and the remaining budget (ErrBudgetExhausted), then appends the charge and
// fsyncs it before returning. Each charge is checked against every entry written before it,
// durable or not, so concurrent charges never overdraw a budget; they share fsyncs. Cancelling ctx stops a charge only before it is written; once Charge returns nil
// the charge stands, and the caller may read data.
func (l *Ledger) Charge(ctx context.Context, req ChargeRequest) (Charge, error) {
	if err := ctx.Err(); err != nil {
		return Charge{}, err
	}
	r, err := chargeRecord(req)
	var e Entry
	if err == nil {
		e, err = l.append(r)
	}
	if err != nil {
		return Charge{}, fmt.Errorf("ledger: charge project %s: %w", req.Project, err)
	}
	return chargeOf(e), nil
}

// chargeRecord builds the charge entry of req (both ledgers).
func chargeRecord(req ChargeRequest) (*record, error) {
	r := &record{
		Kind: KindCharge, Actor: strings.TrimSpace(req.Actor), Project: req.Project,
		SQL: req.SQL, SQLHash: SQLHash(req.SQL), Options: req.Options, DatasetVersion: req.DatasetVersion,
		Text: req.Text,
	}
	var err error
	if r.Epsilon, err = toEps(req.Cost.Epsilon, true); err != nil {
		err = &FieldError{"epsilon", err.Error()}
	} else if r.Delta, err = toDelta(req.Cost.Delta, true); err != nil {
		err = &FieldError{"delta", err.Error()}
	} else if len(req.Mechanisms) > 0 {
		r.Mechanisms, err = compactJSON(req.Mechanisms)
		if err != nil {
			err = &FieldError{"mechanisms", err.Error()}
		}
	}
	return r, err
}

// chargeOf is the handle of a written charge entry.
func chargeOf(e Entry) Charge {
	return Charge{
		Seq: e.Seq, Project: e.Project, Actor: e.Actor, SQLHash: e.SQLHash, Options: e.Options,
		DatasetVersion: e.DatasetVersion, Cost: Budget{e.Epsilon, e.Delta}, Time: e.Time,
	}
}

// Refund returns a charge's cost to its project. It is only for a query that failed before any
// data was read: once the rewritten query reached the engine the charge stands, whatever
// happens. A charge is settled once, by a refund or a release; a second settlement fails with
// ErrAlreadySettled. The refund is recorded even if ctx is cancelled.
func (l *Ledger) Refund(_ context.Context, c Charge, reason string) error {
	l.writeMu.Lock()
	var e Entry
	cs, actor, err := l.openCharge(c.Seq)
	if err == nil {
		e, err = l.writeLocked(&record{
			Kind: KindRefund, Actor: actor, Project: cs.project, Charge: c.Seq,
			Epsilon: cs.cost.eps, Delta: cs.cost.delta, Reason: strings.TrimSpace(reason),
		})
	}
	l.writeMu.Unlock()
	if err == nil {
		err = l.commit(e)
	}
	if err != nil {
		return fmt.Errorf("ledger: refund charge %d: %w", c.Seq, err)
	}
	return nil
}

// Release records the release of a charged query with its SHA-256 (the result hash) and
// caches it under the charge's project, SQL hash, options and dataset version. The release is
// stored compacted; Cached returns those bytes. Like Refund it settles the charge, and is
// recorded even if ctx is cancelled.
func (l *Ledger) Release(_ context.Context, c Charge, release json.RawMessage) error {
	rel, err := compactJSON(release)
	if err != nil {
		return fmt.Errorf("ledger: release of charge %d: %w", c.Seq, &FieldError{"release", err.Error()})
	}
	l.writeMu.Lock()
	var e Entry
	cs, actor, err := l.openCharge(c.Seq)
	if err == nil {
		e, err = l.writeLocked(&record{
			Kind: KindRelease, Actor: actor, Project: cs.project, Charge: c.Seq,
			ResultHash: resultHash(rel), Release: rel,
		})
	}
	l.writeMu.Unlock()
	if err == nil {
		err = l.commit(e)
	}
	if err != nil {
		return fmt.Errorf("ledger: release of charge %d: %w", c.Seq, err)
	}
	return nil
}

// openCharge finds a charge by seq among the entries written; the caller holds writeMu.
func (l *Ledger) openCharge(seq uint64) (*chargeState, string, error) {
	cs, ok := l.spec.charges[seq]
	if !ok {
		return nil, "", fmt.Errorf("entry %d is not a charge", seq)
	}
	return cs, cs.actor, nil
}

func compactJSON(b []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	return buf.Bytes(), nil
}
