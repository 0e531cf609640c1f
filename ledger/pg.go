package ledger

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"
)

// The PostgreSQL ledger's tables. velo_ledger holds the entries: seq, the body exactly as
// the file ledger frames it (canonical JSON) and the chain hash
// SHA-256("velo/ledger/v1\x00" || previous hash || body). velo_ledger_checkpoints holds the
// signed notes, one per row, keyed by the number of entries each covers. velo_ledger_meta
// holds the checkpoint verifier key, so that every replica signs with the same key.
const (
	pgEntriesTable     = "velo_ledger"
	pgCheckpointsTable = "velo_ledger_checkpoints"
	pgMetaTable        = "velo_ledger_meta"
	// pgLockKey is the transaction-level advisory lock every append takes: "veloledg".
	pgLockKey int64 = 0x76656c6f6c656467
)

const pgSchema = `
CREATE TABLE IF NOT EXISTS velo_ledger (
	seq  bigint PRIMARY KEY CHECK (seq > 0),
	body bytea  NOT NULL,
	hash bytea  NOT NULL
);
CREATE TABLE IF NOT EXISTS velo_ledger_checkpoints (
	seq  bigint PRIMARY KEY CHECK (seq > 0),
	note text   NOT NULL
);
CREATE TABLE IF NOT EXISTS velo_ledger_meta (
	name  text PRIMARY KEY,
	value text NOT NULL
);`

// PG is the ledger kept in PostgreSQL, for several velo serve replicas sharing one ledger.
// It holds the same entries as the file ledger, with the same hash chain and the same
// signed checkpoints, and implements Store.
//
//   - Appends are serialised across replicas by a transaction-level advisory lock
//     (pg_advisory_xact_lock). Under it, the appender first reads every entry committed
//     since it last looked and checks and applies it, then checks its own entry against
//     that state — so budgets are never overdrawn, whichever replica charges — and inserts
//     it; the lock is released when the transaction ends.
//   - An append returns once its transaction committed with synchronous_commit on: the
//     charge is durable in PostgreSQL before the caller reads any data. Concurrent appends
//     of one replica share a transaction (group commit): one lock, one read of the others'
//     entries, one insert and one commit for every append queued while the transaction
//     before them ran, each entry checked against the committed ones and those before it. A commit whose
//     outcome is unknown (the connection lost) is reported as ErrWriteFailed; if it did
//     commit, the charge stands and can only over-count spend.
//   - Readers (Project, Active, Entries, Cached) first read the entries other replicas
//     committed, so a release recorded by one replica is served from the cache by another.
//   - Every entry read is checked as the file ledger's replay checks it (canonical body,
//     sequence, prev hash, the stored hash, every budget rule); a row that fails stops
//     this replica's appends and names the entry.
//   - Checkpoints: every CheckpointEvery entries the appender signs (entries, head hash)
//     with the checkpoint key and inserts the note in the same transaction; Close signs the
//     head as well. Every replica must hold the same key (Options.KeyFile): its verifier key
//     is kept in velo_ledger_meta and a replica with another key is refused.
type PG struct {
	pool   *pgxpool.Pool
	where  string // the DSN, redacted, for messages
	secret string // the DSN's password, scrubbed from driver errors
	opts   Options
	log    *slog.Logger
	signer note.Signer

	// mu is held by the appender running a transaction (commitBatch), and by Close.
	mu     sync.Mutex
	closed atomic.Bool
	behind bool   // the clock reads earlier than the last entry; under mu
	lastCP uint64 // entries covered by the last checkpoint known; under mu
	// onBatch, if set (tests), is told the number of appends of each transaction; under mu.
	onBatch func(n int)
	// onQueue, if set (tests), is called once an append is queued.
	onQueue func()

	// queue is the appends waiting for a transaction, in arrival order; under queueMu.
	queueMu sync.Mutex
	queue   []*pgAppend

	brokenMu sync.Mutex
	broken   error // an entry failed its check: no further appends; under brokenMu

	// stateMu guards st and spec. Readers and appenders both apply the entries they read
	// from the table, each under the write lock and only the next one in the chain, so an
	// entry is applied once whoever reads it first; an appender holds the write lock while it
	// builds and checks a transaction's entries against spec.
	stateMu sync.RWMutex
	st      *state // the committed entries
	// spec is a lean look-ahead of st (state.lookahead) plus the entries of the transaction
	// in flight, which each entry of it is checked against.
	spec *state
}

// setBroken stops appends after a row failed its check (logged once).
func (l *PG) setBroken(err error) {
	l.brokenMu.Lock()
	defer l.brokenMu.Unlock()
	if l.broken == nil {
		l.broken = err
		l.log.Error("ledger corrupt: no further appends", "err", err)
	}
}

func (l *PG) brokenErr() error {
	l.brokenMu.Lock()
	defer l.brokenMu.Unlock()
	return l.broken
}

// pgRow is one row of velo_ledger.
type pgRow struct {
	seq  int64
	body []byte
	hash []byte
}

// OpenPostgres opens the ledger in the PostgreSQL database named by dsn (a postgres:// URL;
// a password is better given through PGPASSWORD or a password file than in the URL),
// creating its tables on first use. opts.KeyFile is required: the checkpoint signing key,
// the same file on every replica (created 0600 on first use, with its verifier key beside
// it, KEY without .key plus .pub). It reads and checks every entry and checkpoint; an
// anomaly is a *CorruptError naming the entry.
func OpenPostgres(ctx context.Context, dsn string, opts Options) (*PG, error) {
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = 64
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.KeyFile == "" {
		return nil, errors.New("ledger: a PostgreSQL ledger needs a checkpoint key file (checkpoint_key), the same on every replica")
	}
	l := &PG{where: "PostgreSQL ledger " + RedactDSN(dsn), secret: dsnPassword(dsn), opts: opts, log: opts.Logger, st: newState()}
	if !IsPostgres(dsn) {
		return nil, fmt.Errorf("ledger: %s: want a postgres:// or postgresql:// URL", l.where)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger: %s: %s", l.where, l.scrub(err))
	}
	if l.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("ledger: %s: %s", l.where, l.scrub(err))
	}
	ok := false
	defer func() {
		if !ok {
			l.pool.Close()
		}
	}()
	if err := l.pool.Ping(ctx); err != nil {
		return nil, l.dbError("connect", err)
	}
	if err := os.MkdirAll(filepath.Dir(opts.KeyFile), 0o700); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	var verifier note.Verifier
	if l.signer, verifier, err = loadOrCreateKey(opts.KeyFile, pubKeyPath(opts.KeyFile), l.log); err != nil {
		return nil, err
	}
	if err := l.setup(ctx); err != nil {
		return nil, err
	}
	// Checkpoints first, then the entries: a checkpoint is committed with the entry it
	// covers, so every entry a checkpoint read names is among the entries read after it.
	cpData, err := pgCheckpointsData(ctx, l.pool)
	if err != nil {
		return nil, l.dbError("read checkpoints", err)
	}
	l.mu.Lock()
	l.spec = newState().lookahead()
	err = l.catchUp(ctx, l.pool, true)
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	cps, complete, err := parseCheckpoints(cpData, note.VerifierList(verifier))
	if err == nil && complete < int64(len(cpData)) {
		err = fmt.Errorf("unfinished checkpoint at offset %d", complete)
	}
	if err != nil {
		return nil, &CorruptError{File: pgTableName(pgCheckpointsTable), Reason: err.Error()}
	}
	if err := checkCheckpoints(pgTableName(pgCheckpointsTable), l.st, cps); err != nil {
		return nil, err
	}
	for _, cp := range cps {
		l.lastCP = max(l.lastCP, cp.size)
	}
	ok = true
	return l, nil
}

// pgTableName is how a *CorruptError names a table (its File): the DSN, which the caller
// knows, stays out of it.
func pgTableName(table string) string { return "PostgreSQL table " + table }

// pubKeyPath is the verifier key file beside a checkpoint key: STATE/checkpoint.key ->
// STATE/checkpoint.pub, as the file ledger names them.
func pubKeyPath(keyFile string) string {
	return strings.TrimSuffix(keyFile, ".key") + ".pub"
}

// setup creates the tables (under the advisory lock: replicas may start together) and
// records the checkpoint verifier key, or checks that this replica's key is the recorded one.
func (l *PG) setup(ctx context.Context) error {
	vkey, err := verifierKeyOf(l.opts.KeyFile)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgLockKey); err != nil {
			return l.dbError("lock", err)
		}
		// Created only when missing: afterwards the database user needs no CREATE privilege.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass('velo_ledger') IS NOT NULL
			AND to_regclass('velo_ledger_checkpoints') IS NOT NULL
			AND to_regclass('velo_ledger_meta') IS NOT NULL`).Scan(&exists); err != nil {
			return l.dbError("look for the ledger's tables", err)
		}
		if !exists {
			if _, err := tx.Exec(ctx, pgSchema); err != nil {
				return l.dbError("create the ledger's tables", err)
			}
		}
		var stored string
		err := tx.QueryRow(ctx, `SELECT value FROM velo_ledger_meta WHERE name = 'verifier_key'`).Scan(&stored)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO velo_ledger_meta (name, value) VALUES ('verifier_key', $1)`, vkey); err != nil {
				return l.dbError("record the verifier key", err)
			}
			l.log.Info("recorded the checkpoint verifier key in the ledger's database", "ledger", l.where)
		case err != nil:
			return l.dbError("read the verifier key", err)
		case stored != vkey:
			return fmt.Errorf("ledger: the checkpoint key %s is not the key that signs the checkpoints of %s (its verifier key is in table %s): give every replica the same key file",
				l.opts.KeyFile, l.where, pgMetaTable)
		}
		return nil
	})
}

// verifierKeyOf reads a checkpoint key file and returns its verifier key.
func verifierKeyOf(keyFile string) (string, error) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return "", fmt.Errorf("ledger: read checkpoint key: %w", err)
	}
	vkey, err := verifierKey(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("ledger: checkpoint key %s: %w", keyFile, err)
	}
	return vkey, nil
}

// querier is a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func pgRows(ctx context.Context, q querier, after uint64) ([]pgRow, error) {
	rows, err := q.Query(ctx, `SELECT seq, body, hash FROM velo_ledger WHERE seq > $1 ORDER BY seq`, int64(after))
	if err != nil {
		return nil, err
	}
	var out []pgRow
	for rows.Next() {
		var r pgRow
		if err := rows.Scan(&r.seq, &r.body, &r.hash); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// pgCheckpointsData returns the checkpoints as the file ledger stores them: each note
// followed by a blank line, in order.
func pgCheckpointsData(ctx context.Context, q querier) ([]byte, error) {
	rows, err := q.Query(ctx, `SELECT note FROM velo_ledger_checkpoints ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		buf.WriteString(n)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), rows.Err()
}

// applyRow checks one row as replay checks a frame and applies it to st; it returns the
// entry and its chain hash.
func applyRow(st *state, row pgRow) (*record, [32]byte, error) {
	r, err := decodeBody(row.body)
	if err == nil && r.Seq != uint64(row.seq) {
		err = fmt.Errorf("the row numbered %d holds entry %d", row.seq, r.Seq)
	}
	if err == nil {
		err = st.check(r)
	}
	h := entryHash(st.head, row.body)
	if err == nil && !bytes.Equal(row.hash, h[:]) {
		err = errors.New("the stored hash does not match the entry's body: the entry was changed")
	}
	if err != nil {
		return nil, h, &CorruptError{File: pgTableName(pgEntriesTable), Seq: uint64(row.seq), Offset: st.size, Reason: err.Error()}
	}
	st.apply(r, h, st.size+int64(len(row.body)))
	return r, h, nil
}

// catchUp reads the entries committed since st's last and applies them, to spec as well
// unless entries of a transaction in flight are in it (none are under the advisory lock:
// the rows read then all precede them); rows applied meanwhile (by a reader, or by this
// replica's appender) are skipped. Under the advisory
// lock (locked) the table must continue the chain exactly; without it, reading stops at a
// gap (appends commit in chain order, so none is expected). A row that fails its check
// stops appends.
func (l *PG) catchUp(ctx context.Context, q querier, locked bool) error {
	l.stateMu.RLock()
	after := l.st.seq
	l.stateMu.RUnlock()
	rows, err := pgRows(ctx, q, after)
	if err != nil {
		return l.dbError("read entries", err)
	}
	if len(rows) == 0 {
		return nil
	}
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	for _, row := range rows {
		if uint64(row.seq) <= l.st.seq {
			continue
		}
		if !locked && uint64(row.seq) != l.st.seq+1 {
			return nil
		}
		inStep := l.spec.seq == l.st.seq // no entry of this replica's is in flight
		r, h, err := applyRow(l.st, row)
		if err != nil {
			l.setBroken(err)
			return err
		}
		if inStep {
			l.spec.apply(r, h, l.st.size)
		}
	}
	return nil
}

// refresh reads what other replicas appended, for a reader; it waits for no appender. A
// failure to read is logged and the entries read so far answer.
func (l *PG) refresh() {
	if l.closed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.catchUp(ctx, l.pool, false); err != nil && !l.closed.Load() && !errors.Is(err, ErrCorrupt) {
		l.log.Error("ledger: cannot read new entries; answering from those read so far", "ledger", l.where, "err", err)
	}
}

// pgAppend is one append waiting for a transaction: its caller's context and how to build
// its entry from the ledger's state; the transaction's leader sets e or err, then closes done.
type pgAppend struct {
	ctx   context.Context
	build func(st *state) (*record, error)
	e     Entry
	err   error
	done  chan struct{}
}

func (a *pgAppend) finish(e Entry, err error) {
	a.e, a.err = e, err
	close(a.done)
}

// maxPGBatch bounds the entries of one append transaction; appends beyond it wait for the
// next.
const maxPGBatch = 256

// append records the entry build makes, and returns once the transaction that inserted it
// committed. Appends of this replica share transactions (group commit): an appender queues
// its append and takes mu; if the transaction before it already committed its append, it
// is done, or else it runs one transaction for the appends queued (commitBatch), at most
// maxPGBatch of them, the oldest first, until its own is done.
func (l *PG) append(ctx context.Context, build func(st *state) (*record, error)) (Entry, error) {
	a := &pgAppend{ctx: ctx, build: build, done: make(chan struct{})}
	l.queueMu.Lock()
	l.queue = append(l.queue, a)
	l.queueMu.Unlock()
	if l.onQueue != nil {
		l.onQueue()
	}
	for {
		l.mu.Lock()
		select {
		case <-a.done: // a transaction (this appender's or another's) committed or failed it
			l.mu.Unlock()
			return a.e, a.err
		default:
		}
		l.queueMu.Lock()
		n := min(len(l.queue), maxPGBatch)
		batch := slices.Clone(l.queue[:n])
		l.queue = slices.Delete(l.queue, 0, n)
		l.queueMu.Unlock()
		if l.onBatch != nil {
			l.onBatch(len(batch))
		}
		l.commitBatch(batch)
		l.mu.Unlock()
	}
}

// commitBatch runs one transaction for the appends of batch: under the advisory lock it reads the entries other replicas
// committed, builds each append's entry from that state and the entries before it in the
// batch, checks it as replay will, inserts them all (with a checkpoint at every multiple of
// CheckpointEvery) and commits with synchronous_commit on. An append whose entry fails its
// check (a budget exhausted, a charge already settled) or whose caller gave up before it
// was built gets its own error and no entry; the others go on. If the transaction fails,
// every append built into it fails with ErrWriteFailed and nothing of it is applied. The
// caller holds mu.
func (l *PG) commitBatch(batch []*pgAppend) {
	if l.closed.Load() {
		for _, a := range batch {
			a.finish(Entry{}, ErrClosed)
		}
		return
	}
	if broken := l.brokenErr(); broken != nil {
		for _, a := range batch {
			a.finish(Entry{}, fmt.Errorf("ledger: no appends to a ledger that failed its check: %w", broken))
		}
		return
	}
	// The transaction's reads and its lock wait give up once every caller gave up; once an
	// entry is inserted, the commit runs whatever happens to them: an abandoned commit would
	// leave a caller not knowing whether it was charged.
	wctx := context.WithoutCancel(batch[0].ctx)
	ctx, cancel := context.WithCancel(wctx)
	defer cancel()
	var waiting atomic.Int64
	waiting.Store(int64(len(batch)))
	for _, a := range batch {
		stop := context.AfterFunc(a.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	// The database out of reach (or a row failing its check) is, to the callers, a ledger
	// that cannot record entries: ErrWriteFailed. Nothing was written; unlike the file
	// ledger's, appends resume once the database answers again.
	unavailable := func(err error) {
		for _, a := range batch {
			if cerr := a.ctx.Err(); cerr != nil {
				a.finish(Entry{}, cerr) // the caller gave up: nothing was written
			} else {
				a.finish(Entry{}, fmt.Errorf("%w: %w", ErrWriteFailed, err))
			}
		}
	}
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		unavailable(l.dbError("begin", err))
		return
	}
	defer tx.Rollback(wctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit TO on`); err != nil {
		unavailable(l.dbError("begin", err))
		return
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgLockKey); err != nil {
		unavailable(l.dbError("lock", err))
		return
	}
	if err := l.catchUp(ctx, tx, true); err != nil {
		unavailable(err)
		return
	}
	type built struct {
		a    *pgAppend
		dec  *record
		body []byte
		h    [32]byte
	}
	var entries []built
	l.stateMu.Lock()
	if l.spec.seq != l.st.seq { // not expected: spec holds st and nothing in flight here
		l.spec = l.st.lookahead()
	}
	for _, a := range batch {
		if err := a.ctx.Err(); err != nil {
			a.finish(Entry{}, err)
			continue
		}
		dec, body, h, err := l.prepare(a.build)
		if err != nil {
			a.finish(Entry{}, err)
			continue
		}
		l.spec.apply(dec, h, l.spec.size+int64(len(body)))
		entries = append(entries, built{a, dec, body, h})
	}
	l.stateMu.Unlock()
	if len(entries) == 0 {
		return
	}
	// From here a failure loses the whole transaction: spec goes back to the committed state.
	fail := func(err error) {
		l.stateMu.Lock()
		l.spec = l.st.lookahead()
		l.stateMu.Unlock()
		for _, b := range entries {
			b.a.finish(Entry{}, err)
		}
	}
	first, last := entries[0].dec.Seq, entries[len(entries)-1].dec.Seq
	seqs, bodies, hashes := make([]int64, len(entries)), make([][]byte, len(entries)), make([][]byte, len(entries))
	for i, b := range entries {
		seqs[i], bodies[i], hashes[i] = int64(b.dec.Seq), b.body, b.h[:]
	}
	if _, err := tx.Exec(wctx, `INSERT INTO velo_ledger (seq, body, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])`, seqs, bodies, hashes); err != nil {
		fail(fmt.Errorf("%w: entries %d to %d: %s", ErrWriteFailed, first, last, l.scrub(err)))
		return
	}
	every := uint64(l.opts.CheckpointEvery)
	checkpoint := uint64(0)
	for _, b := range entries {
		if b.dec.Seq%every == 0 {
			if err := l.insertCheckpoint(wctx, tx, b.dec.Seq, b.h); err != nil {
				fail(err)
				return
			}
			checkpoint = b.dec.Seq
		}
	}
	if err := tx.Commit(wctx); err != nil {
		fail(fmt.Errorf("%w: entries %d to %d (if the commit reached the database, they stand): %s", ErrWriteFailed, first, last, l.scrub(err)))
		return
	}
	l.stateMu.Lock()
	for _, b := range entries {
		if l.st.seq+1 == b.dec.Seq { // else a reader has already read it from the table
			l.st.apply(b.dec, b.h, l.st.size+int64(len(b.body)))
		}
	}
	l.stateMu.Unlock()
	if checkpoint > 0 {
		l.lastCP = checkpoint
	}
	for _, b := range entries {
		b.a.finish(entryOf(b.dec, b.h), nil)
	}
}

// prepare builds the next entry from spec (under the advisory lock, after catchUp: spec
// holds every committed entry and those built before it in this transaction) and checks it
// as replay will: its decoded form, its body and its hash. The caller holds mu and stateMu.
func (l *PG) prepare(build func(st *state) (*record, error)) (*record, []byte, [32]byte, error) {
	st := l.spec
	r, err := build(st)
	if err != nil {
		return nil, nil, [32]byte{}, err
	}
	r.Seq, r.Prev, r.Time = st.seq+1, hex.EncodeToString(st.head[:]), l.entryTime(st.last)
	body, err := encodeBody(r)
	if err != nil {
		return nil, nil, [32]byte{}, fmt.Errorf("ledger: encode entry: %w", err)
	}
	if len(body) > maxFrameBody {
		return nil, nil, [32]byte{}, fmt.Errorf("ledger: entry of %d bytes exceeds the %d-byte limit", len(body), maxFrameBody)
	}
	dec, err := decodeBody(body)
	if err != nil {
		return nil, nil, [32]byte{}, fmt.Errorf("ledger: entry does not survive a round trip: %w", err)
	}
	if err := st.check(dec); err != nil {
		return nil, nil, [32]byte{}, err
	}
	return dec, body, entryHash(st.head, body), nil
}

// insertCheckpoint signs (seq, head) and inserts the note in tx.
func (l *PG) insertCheckpoint(ctx context.Context, tx pgx.Tx, seq uint64, head [32]byte) error {
	msg, err := signCheckpoint(l.signer, seq, head)
	if err != nil {
		return fmt.Errorf("ledger: sign checkpoint: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO velo_ledger_checkpoints (seq, note) VALUES ($1, $2) ON CONFLICT (seq) DO NOTHING`, int64(seq), string(msg)); err != nil {
		return fmt.Errorf("%w: checkpoint of %d entries: %s", ErrWriteFailed, seq, l.scrub(err))
	}
	return nil
}

// entryTime is the time of the entry being appended, as the file ledger's: the clock, or the
// last entry's time if the clock reads earlier. The caller holds mu.
func (l *PG) entryTime(last time.Time) time.Time {
	now := l.opts.Now().UTC()
	if now.Before(last) {
		if !l.behind {
			l.log.Warn("the clock reads earlier than the ledger's last entry: new entries keep that entry's time until the clock catches up",
				"clock", now.Format(time.RFC3339Nano), "last_entry", last.Format(time.RFC3339Nano), "behind", last.Sub(now).String())
			l.behind = true
		}
		return last
	}
	l.behind = false
	return now
}

// CreateProject appends a project, as (*Ledger).CreateProject.
func (l *PG) CreateProject(ctx context.Context, actor string, p Project) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d, err := definitionOf(p)
	if err == nil {
		_, err = l.append(ctx, func(*state) (*record, error) {
			return &record{Kind: KindProject, Actor: actor, Project: p.ID, Definition: d}, nil
		})
	}
	if err != nil {
		return fmt.Errorf("ledger: create project %s: %w", p.ID, err)
	}
	return nil
}

// Grant adds budget to a project, as (*Ledger).Grant.
func (l *PG) Grant(ctx context.Context, actor, project string, add Budget, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := grantRecord(actor, project, add, reason)
	if err == nil {
		_, err = l.append(ctx, func(*state) (*record, error) { return r, nil })
	}
	if err != nil {
		return fmt.Errorf("ledger: grant to project %s: %w", project, err)
	}
	return nil
}

// Charge checks and appends a charge, as (*Ledger).Charge, against every entry any replica
// committed before it; it returns once the charge is committed.
func (l *PG) Charge(ctx context.Context, req ChargeRequest) (Charge, error) {
	if err := ctx.Err(); err != nil {
		return Charge{}, err
	}
	r, err := chargeRecord(req)
	var e Entry
	if err == nil {
		e, err = l.append(ctx, func(*state) (*record, error) { return r, nil })
	}
	if err != nil {
		return Charge{}, fmt.Errorf("ledger: charge project %s: %w", req.Project, err)
	}
	return chargeOf(e), nil
}

// Refund returns a charge's cost, as (*Ledger).Refund; it is recorded even if ctx is
// cancelled.
func (l *PG) Refund(ctx context.Context, c Charge, reason string) error {
	_, err := l.append(context.WithoutCancel(ctx), func(st *state) (*record, error) {
		cs, ok := st.charges[c.Seq]
		if !ok {
			return nil, fmt.Errorf("entry %d is not a charge", c.Seq)
		}
		return &record{
			Kind: KindRefund, Actor: cs.actor, Project: cs.project, Charge: c.Seq,
			Epsilon: cs.cost.eps, Delta: cs.cost.delta, Reason: strings.TrimSpace(reason),
		}, nil
	})
	if err != nil {
		return fmt.Errorf("ledger: refund charge %d: %w", c.Seq, err)
	}
	return nil
}

// Release records and caches a charged query's release, as (*Ledger).Release; every
// replica serves it from its cache afterwards. It is recorded even if ctx is cancelled.
func (l *PG) Release(ctx context.Context, c Charge, release json.RawMessage) error {
	rel, err := compactJSON(release)
	if err != nil {
		return fmt.Errorf("ledger: release of charge %d: %w", c.Seq, &FieldError{"release", err.Error()})
	}
	_, err = l.append(context.WithoutCancel(ctx), func(st *state) (*record, error) {
		cs, ok := st.charges[c.Seq]
		if !ok {
			return nil, fmt.Errorf("entry %d is not a charge", c.Seq)
		}
		return &record{
			Kind: KindRelease, Actor: cs.actor, Project: cs.project, Charge: c.Seq,
			ResultHash: resultHash(rel), Release: rel,
		}, nil
	})
	if err != nil {
		return fmt.Errorf("ledger: release of charge %d: %w", c.Seq, err)
	}
	return nil
}

// Dummy records a dummy run, as (*Ledger).Dummy: no cost, no budget change.
func (l *PG) Dummy(ctx context.Context, req DummyRequest) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	r, err := dummyRecord(req)
	if err != nil {
		return Entry{}, err
	}
	e, err := l.append(ctx, func(*state) (*record, error) { return r, nil })
	if err != nil {
		return Entry{}, fmt.Errorf("ledger: dummy run of project %s: %w", req.Project, err)
	}
	return e, nil
}

// Project returns one project's status as of the entries every replica committed.
func (l *PG) Project(id string) (ProjectStatus, error) {
	l.refresh()
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	ps, ok := l.st.projects[id]
	if !ok {
		return ProjectStatus{}, fmt.Errorf("ledger: project %q: %w", id, ErrUnknownProject)
	}
	return ps.status(), nil
}

// Projects returns every project's status, ordered by ID.
func (l *PG) Projects() []ProjectStatus {
	l.refresh()
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.st.statuses()
}

// Active refuses an unknown or expired project, as (*Ledger).Active.
func (l *PG) Active(id string) error {
	l.refresh()
	now := l.opts.Now().UTC()
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.st.active(id, now)
}

// Entries returns the entries after sinceSeq, of one project or of all (project "").
func (l *PG) Entries(project string, sinceSeq uint64) []Entry {
	l.refresh()
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.st.entriesAfter(project, sinceSeq)
}

// Cached returns the release recorded for this key by any replica, as (*Ledger).Cached.
func (l *PG) Cached(project, sqlHash, options, datasetVersion string) (json.RawMessage, bool) {
	l.refresh()
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.st.cached(project, sqlHash, options, datasetVersion)
}

// Verify checks the ledger in the database as VerifyPostgres does.
func (l *PG) Verify(ctx context.Context, opts VerifyOptions) (VerifyReport, error) {
	return verifyPG(ctx, l.where, l.pool, opts, l.scrub)
}

// Close signs a checkpoint of the head, unless one covers it already, and closes the
// connections. Later calls return nil.
func (l *PG) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Swap(true) {
		return nil
	}
	defer l.pool.Close()
	if broken := l.brokenErr(); broken != nil {
		return fmt.Errorf("ledger: closed without a final checkpoint: %w", broken)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgLockKey); err != nil {
			return l.dbError("lock", err)
		}
		if err := l.catchUp(ctx, tx, true); err != nil {
			return err
		}
		var last int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM velo_ledger_checkpoints`).Scan(&last); err != nil {
			return l.dbError("read checkpoints", err)
		}
		l.stateMu.RLock()
		seq, head := l.st.seq, l.st.head
		l.stateMu.RUnlock()
		if seq == 0 || uint64(last) >= seq {
			return nil
		}
		return l.insertCheckpoint(ctx, tx, seq, head)
	})
	if err != nil {
		return fmt.Errorf("ledger: final checkpoint: %w", err)
	}
	return nil
}

// dbError wraps a database error with what was being done; the DSN's password never
// appears in it.
func (l *PG) dbError(doing string, err error) error {
	return fmt.Errorf("ledger: %s: %s: %s", l.where, doing, l.scrub(err))
}

func (l *PG) scrub(err error) string { return scrub(err, l.secret) }

func scrub(err error, secret string) string {
	s := err.Error()
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "xxxxx")
	}
	return s
}

// dsnPassword is the password a URL carries, if any.
func dsnPassword(dsn string) string {
	u, err := url.Parse(strings.TrimSpace(dsn))
	if err != nil {
		return ""
	}
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			return p
		}
	}
	return u.Query().Get("password")
}

// pgSnapshot is the whole ledger as one read-only transaction sees it.
type pgSnapshot struct {
	checkpoints []byte
	verifierKey string
	rows        []pgRow
}

func readSnapshot(ctx context.Context, pool *pgxpool.Pool, scrubf func(error) string) (*pgSnapshot, error) {
	snap := &pgSnapshot{}
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if snap.checkpoints, err = pgCheckpointsData(ctx, tx); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT value FROM velo_ledger_meta WHERE name = 'verifier_key'`).Scan(&snap.verifierKey)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		snap.rows, err = pgRows(ctx, tx, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: read the ledger: %s", scrubf(err))
	}
	return snap, nil
}

// replay checks and applies every row; the table must hold the chain from entry 1 on.
func (s *pgSnapshot) replay() (*state, int64, error) {
	st := newState()
	var size int64
	for _, row := range s.rows {
		size += int64(len(row.body))
		if uint64(row.seq) != st.seq+1 {
			return st, size, &CorruptError{File: pgTableName(pgEntriesTable), Seq: st.seq + 1, Offset: st.size,
				Reason: fmt.Sprintf("entry %d is missing (the next row is %d): entries were removed", st.seq+1, row.seq)}
		}
		if _, _, err := applyRow(st, row); err != nil {
			return st, size, err
		}
	}
	return st, size, nil
}

// connect opens a small pool for the CLI's one-off reads.
func connect(ctx context.Context, dsn string) (*pgxpool.Pool, string, func(error) string, error) {
	where := "PostgreSQL ledger " + RedactDSN(dsn)
	secret := dsnPassword(dsn)
	scrubf := func(err error) string { return scrub(err, secret) }
	if !IsPostgres(dsn) {
		return nil, where, scrubf, fmt.Errorf("ledger: %s: want a postgres:// or postgresql:// URL", where)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, where, scrubf, fmt.Errorf("ledger: %s: %s", where, scrubf(err))
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		if err = pool.Ping(ctx); err != nil {
			pool.Close()
		}
	}
	if err != nil {
		return nil, where, scrubf, fmt.Errorf("ledger: %s: connect: %s", where, scrubf(err))
	}
	return pool, where, scrubf, nil
}

// VerifyPostgres checks the ledger in the PostgreSQL database named by dsn, read-only, in
// one consistent snapshot, as Verify checks a file ledger: every entry's canonical form,
// sequence, prev hash and stored hash, every budget rule, and every signed checkpoint
// against the chain. opts.CheckpointsFile and opts.PublicKeyFile name the DPO's copies
// (default: the checkpoints table, and the verifier key recorded in the database). Any
// anomaly is a *CorruptError naming the entry.
func VerifyPostgres(ctx context.Context, dsn string, opts VerifyOptions) (VerifyReport, error) {
	pool, where, scrubf, err := connect(ctx, dsn)
	if err != nil {
		return VerifyReport{}, err
	}
	defer pool.Close()
	return verifyPG(ctx, where, pool, opts, scrubf)
}

func verifyPG(ctx context.Context, where string, pool *pgxpool.Pool, opts VerifyOptions, scrubf func(error) string) (VerifyReport, error) {
	var rep VerifyReport
	snap, err := readSnapshot(ctx, pool, scrubf)
	if err != nil {
		return rep, err
	}
	cpData, cpWhere := snap.checkpoints, pgTableName(pgCheckpointsTable)
	if opts.CheckpointsFile != "" {
		if cpData, err = os.ReadFile(opts.CheckpointsFile); err != nil {
			return rep, fmt.Errorf("ledger: read checkpoints: %w", err)
		}
		cpWhere = opts.CheckpointsFile
	}
	vkey := snap.verifierKey
	if opts.PublicKeyFile != "" {
		b, err := os.ReadFile(opts.PublicKeyFile)
		if err != nil {
			return rep, fmt.Errorf("ledger: read public key: %w", err)
		}
		vkey = strings.TrimSpace(string(b))
	}
	st, size, err := snap.replay()
	rep.fill(st, size)
	if err != nil {
		return rep, err
	}
	var verifiers note.Verifiers
	if len(cpData) > 0 {
		if vkey == "" {
			return rep, &CorruptError{File: pgTableName(pgMetaTable), Reason: "checkpoints but no verifier key"}
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return rep, fmt.Errorf("ledger: verifier key: %w", err)
		}
		verifiers = note.VerifierList(v)
	}
	cps, complete, err := parseCheckpoints(cpData, verifiers)
	if err == nil && complete < int64(len(cpData)) {
		err = fmt.Errorf("unfinished checkpoint at offset %d", complete)
	}
	if err != nil {
		return rep, &CorruptError{File: cpWhere, Offset: complete, Reason: fmt.Sprintf("after %d good checkpoints: %v", len(cps), err)}
	}
	if err := checkCheckpoints(cpWhere, st, cps); err != nil {
		return rep, err
	}
	rep.Checkpoints = len(cps)
	for _, cp := range cps {
		rep.Signed = max(rep.Signed, cp.size)
	}
	return rep, nil
}

// ReadPostgres loads the ledger in the database named by dsn for display and export, as
// Read does for a file ledger: the entries and the per-project budgets, the chain checked.
func ReadPostgres(ctx context.Context, dsn string) ([]Entry, []ProjectStatus, error) {
	pool, _, scrubf, err := connect(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	defer pool.Close()
	snap, err := readSnapshot(ctx, pool, scrubf)
	if err != nil {
		return nil, nil, err
	}
	st, _, err := snap.replay()
	if err != nil {
		return nil, nil, err
	}
	return st.entries, st.statuses(), nil
}

// DumpPostgres writes the ledger in the database named by dsn to dir as a file ledger's
// state directory: dir/ledger (the same bodies, framed), dir/checkpoints (the same signed
// notes) and dir/checkpoint.pub (the verifier key recorded in the database). Verify (velo
// ledger verify --state dir) then checks it offline: the same chain and the same
// signatures. dir must not hold a ledger already.
func DumpPostgres(ctx context.Context, dsn, dir string) (entries int, err error) {
	pool, _, scrubf, err := connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	snap, err := readSnapshot(ctx, pool, scrubf)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("ledger: %w", err)
	}
	var frames bytes.Buffer
	for _, row := range snap.rows {
		frames.Write(frame(row.body))
	}
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{ledgerFile, frames.Bytes(), 0o600},
		{checkpointsFile, snap.checkpoints, 0o644},
		{pubFile, []byte(snap.verifierKey + "\n"), 0o644},
	} {
		if err := writeNew(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return 0, fmt.Errorf("ledger: export to %s: %w", dir, err)
		}
	}
	return len(snap.rows), syncDir(dir)
}
