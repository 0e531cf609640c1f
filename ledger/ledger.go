package ledger

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Errors callers act on; check with errors.Is.
var (
	// ErrBudgetExhausted: the charge would take the project's spend above its total.
	ErrBudgetExhausted = errors.New("privacy budget exhausted")
	// ErrOverCap: the query asks for more epsilon or delta than the project allows per query.
	ErrOverCap = errors.New("over the project's per-query cap")
	// ErrUnknownProject: no project has this ID.
	ErrUnknownProject = errors.New("unknown project")
	// ErrProjectExists: CreateProject with an ID already taken.
	ErrProjectExists = errors.New("project already exists")
	// ErrProjectExpired: the project's expiry has passed; it can no longer be charged.
	ErrProjectExpired = errors.New("project expired")
	// ErrLocked: another process holds the ledger; the message names its pid, host and start.
	ErrLocked = errors.New("ledger locked")
	// ErrCorrupt: the ledger or its checkpoints fail a check; the *CorruptError says where.
	ErrCorrupt = errors.New("ledger corrupt")
	// ErrAlreadySettled: the charge already has a refund or a release.
	ErrAlreadySettled = errors.New("charge already settled")
	// ErrClosed: the ledger was closed.
	ErrClosed = errors.New("ledger closed")
	// ErrWriteFailed: writing or syncing an entry failed (disk full, I/O error). The entry was
	// not recorded, and the ledger takes no further appends until it is reopened; the error
	// also wraps the cause (errors.Is(err, syscall.ENOSPC), ...).
	ErrWriteFailed = errors.New("ledger write failed")
)

// BudgetError says why a charge was refused for want of budget: what the query asks, and
// the project's total, spent and left (exact decimals, as the ledger sums them). It wraps
// ErrBudgetExhausted. Its text holds only budget figures, which the project's members may
// read anyway (GET /v1/projects/{id}).
type BudgetError struct {
	Project                   string
	Asked, Total, Spent, Left Budget
	// The same amounts in fixed point, printed as exact decimals by Error.
	asked, total, spent, left amount
}

// Error gives the numbers: "privacy budget exhausted: the query asks for epsilon 1 and
// delta 0; project wl has epsilon 0.5 and delta 0.00001 left of epsilon 10 and delta
// 0.00001 (epsilon 9.5 and delta 0 spent)".
func (e *BudgetError) Error() string {
	return fmt.Sprintf("%v: the query asks for %s; project %s has %s left of %s (%s spent)",
		ErrBudgetExhausted, e.asked.and(), e.Project, e.left.and(), e.total.and(), e.spent.and())
}

// Unwrap makes errors.Is(err, ErrBudgetExhausted) hold.
func (e *BudgetError) Unwrap() error { return ErrBudgetExhausted }

func newBudgetError(project string, asked, total, spent amount) *BudgetError {
	left := total.sub(spent)
	return &BudgetError{
		Project: project, Asked: asked.budget(), Total: total.budget(), Spent: spent.budget(), Left: left.budget(),
		asked: asked, total: total, spent: spent, left: left,
	}
}

// CorruptError locates an anomaly in a ledger or checkpoints file. It wraps ErrCorrupt.
type CorruptError struct {
	File   string
	Seq    uint64 // the entry at fault (for a torn tail, the one being appended; for a checkpoint, the last it covers); 0 if none
	Offset int64  // byte offset in File
	Reason string
	Torn   bool // a torn tail: Open cuts it and records a recovery entry
}

// Error names the file, the entry, the offset and the reason.
func (e *CorruptError) Error() string {
	if e.Seq == 0 {
		return fmt.Sprintf("%v: %s (offset %d): %s", ErrCorrupt, e.File, e.Offset, e.Reason)
	}
	return fmt.Sprintf("%v: %s: entry %d (offset %d): %s", ErrCorrupt, e.File, e.Seq, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Files in the state directory.
const (
	ledgerFile      = "ledger"
	lockFile        = "ledger.lock"
	checkpointsFile = "checkpoints"
	keyFile         = "checkpoint.key"
	pubFile         = "checkpoint.pub"
)

// Options configures Open. The zero value is usable.
type Options struct {
	// CheckpointEvery is the number of entries between signed checkpoints (default 64); Close
	// writes one as well.
	CheckpointEvery int
	// Now is the clock for entry times and expiry (default time.Now).
	Now func() time.Time
	// Logger receives recovery and checkpoint messages (default: discarded).
	Logger *slog.Logger
	// KeyFile is the checkpoint signing key (default STATE/checkpoint.key), created 0600 on
	// first use. Keeping it outside STATE keeps it apart from the ledger it signs.
	KeyFile string

	// openFile opens the ledger and checkpoints files (default os.OpenFile); the package's
	// tests replace it to make writes and fsyncs fail.
	openFile func(name string, flag int, perm os.FileMode) (file, error)
}

// file is what the ledger needs of the files it appends to.
type file interface {
	io.Reader
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Close() error
}

// Ledger is an open ledger: the only writer of its state directory. It is safe for concurrent
// use. An append returns only once its entry is fsynced; concurrent appends share fsyncs
// (group commit): each appender checks its entry against every entry written before it,
// durable or not, writes it, and waits for an fsync that covers it. The first waiter not yet
// covered runs the next fsync for every entry written so far. Readers see an entry only once
// it is durable.
type Ledger struct {
	dir  string
	opts Options
	log  *slog.Logger

	// writeMu is held to check, encode and write an entry, against spec.
	writeMu sync.Mutex
	spec    *state         // every entry written, durable or not (lean); under writeMu
	pending []pendingEntry // written, not yet known durable, in chain order; under writeMu
	broken  error          // a write or fsync failed: no further appends; under writeMu
	closed  bool           // under writeMu
	behind  bool           // the clock reads earlier than the last entry (warned once per episode)

	// syncMu is held by the one appender running an fsync and applying what it covers to
	// st, and by checkpoints and Close. Lock order: syncMu before writeMu.
	syncMu  sync.Mutex
	syncErr error // an fsync failed: every entry not yet durable is lost; under syncMu
	f       file
	cpf     file
	cpSize  int64
	lockf   *os.File
	signer  note.Signer
	lastCP  uint64 // entries covered by the last checkpoint written or read

	stateMu sync.RWMutex // the writer of st holds syncMu too; readers take only this
	st      *state       // the durable entries
}

// pendingEntry is an entry written but not yet known to be durable.
type pendingEntry struct {
	r   *record
	h   [32]byte
	end int64
}

// Open opens the ledger in dir for writing, creating dir, the ledger, the lock and the
// checkpoint key on first use. It fails with ErrLocked if another process has it open. It
// replays every entry (rebuilding projects, spend and the release cache), checks the signed
// checkpoints, and cuts a torn tail, recording a recovery entry; any other anomaly fails with
// a *CorruptError naming the entry.
func Open(dir string, opts Options) (*Ledger, error) {
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
		opts.KeyFile = filepath.Join(dir, keyFile)
	}
	if opts.openFile == nil {
		opts.openFile = func(name string, flag int, perm os.FileMode) (file, error) {
			f, err := os.OpenFile(name, flag, perm)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return f, nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	lockf, err := acquireLock(filepath.Join(dir, lockFile), opts.Now())
	if err != nil {
		return nil, err
	}
	l := &Ledger{dir: dir, opts: opts, log: opts.Logger, lockf: lockf}
	ok := false
	defer func() {
		if !ok {
			l.closeFiles()
		}
	}()
	if _, err := os.Stat(opts.KeyFile); errors.Is(err, fs.ErrNotExist) {
		if fi, err := os.Stat(filepath.Join(dir, checkpointsFile)); err == nil && fi.Size() > 0 {
			return nil, fmt.Errorf("ledger: checkpoint key %s is missing but %s holds checkpoints it signed: restore the key", opts.KeyFile, filepath.Join(dir, checkpointsFile))
		}
	}
	var verifier note.Verifier
	if l.signer, verifier, err = loadOrCreateKey(opts.KeyFile, filepath.Join(dir, pubFile), l.log); err != nil {
		return nil, err
	}

	path := filepath.Join(dir, ledgerFile)
	if l.f, err = l.opts.openFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	data, err := io.ReadAll(l.f)
	if err != nil {
		return nil, fmt.Errorf("ledger: read %s: %w", path, err)
	}
	st, tail, err := replay(path, data)
	if err != nil {
		return nil, err
	}
	l.st = st
	l.spec = st.lookahead()

	if err := l.openCheckpoints(verifier); err != nil {
		return nil, err
	}
	// The files may have just been created: make their names as durable as their contents.
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	if tail != nil {
		if err := l.cutTornTail(path, int64(len(data)), tail); err != nil {
			return nil, err
		}
	}
	ok = true
	return l, nil
}

// openCheckpoints checks STATE/checkpoints against the chain and opens it for appending; a
// checkpoint append that never finished is cut.
func (l *Ledger) openCheckpoints(v note.Verifier) error {
	path := filepath.Join(l.dir, checkpointsFile)
	var err error
	if l.cpf, err = l.opts.openFile(path, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	data, err := io.ReadAll(l.cpf)
	if err != nil {
		return fmt.Errorf("ledger: read %s: %w", path, err)
	}
	cps, complete, err := parseCheckpoints(data, note.VerifierList(v))
	if err != nil {
		return &CorruptError{File: path, Reason: err.Error()}
	}
	if err := checkCheckpoints(path, l.st, cps); err != nil {
		return err
	}
	if complete < int64(len(data)) {
		l.log.Warn("cutting an unfinished checkpoint", "file", path, "offset", complete, "bytes", int64(len(data))-complete)
		if err := l.cpf.Truncate(complete); err != nil {
			return fmt.Errorf("ledger: cut %s: %w", path, err)
		}
		if err := l.cpf.Sync(); err != nil {
			return fmt.Errorf("ledger: sync %s: %w", path, err)
		}
	}
	l.cpSize = complete
	for _, cp := range cps {
		l.lastCP = max(l.lastCP, cp.size)
	}
	return nil
}

// cutTornTail cuts a torn tail and records the cut. The cut bytes were never acknowledged: an
// append returns only after its fsync, so no caller was told they were written.
func (l *Ledger) cutTornTail(path string, size int64, t *torn) error {
	cut := size - t.offset
	l.log.Warn("cutting a torn tail", "file", path, "offset", t.offset, "bytes", cut, "reason", t.reason)
	if err := l.f.Truncate(t.offset); err != nil {
		return fmt.Errorf("ledger: cut torn tail: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("ledger: cut torn tail: %w", err)
	}
	_, err := l.append(&record{Kind: KindRecovery, Actor: "velo", TruncatedAt: t.offset, TruncatedBytes: cut,
		Reason: "torn tail: " + t.reason})
	return err
}

// replay applies every complete frame of data to a new state. A torn tail is returned for the
// caller to cut (Open) or report (Verify); anything else is a *CorruptError.
func replay(path string, data []byte) (*state, *torn, error) {
	st := newState()
	var off int64
	for off < int64(len(data)) {
		body, next, tail, err := readFrame(data, off)
		if tail != nil {
			return st, tail, nil
		}
		var r *record
		if err == nil {
			r, err = decodeBody(body)
		}
		if err == nil {
			err = st.check(r)
		}
		if err != nil {
			return st, nil, &CorruptError{File: path, Seq: st.seq + 1, Offset: off, Reason: err.Error()}
		}
		st.apply(r, entryHash(st.head, body), next)
		off = next
	}
	return st, nil, nil
}

// append checks r against every entry written before it, writes it, and returns once it is
// durable.
func (l *Ledger) append(r *record) (Entry, error) {
	l.writeMu.Lock()
	e, err := l.writeLocked(r)
	l.writeMu.Unlock()
	if err != nil {
		return Entry{}, err
	}
	if err := l.commit(e); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// writeLocked checks r against spec, writes its frame after every entry written so far and
// applies it to spec; the entry is not durable yet (commit). The caller holds writeMu.
func (l *Ledger) writeLocked(r *record) (Entry, error) {
	if l.closed {
		return Entry{}, ErrClosed
	}
	if l.broken != nil {
		return Entry{}, fmt.Errorf("ledger: no appends after a failed write (reopen the ledger): %w", l.broken)
	}
	st := l.spec
	r.Seq, r.Prev, r.Time = st.seq+1, hex.EncodeToString(st.head[:]), l.entryTime()
	body, err := encodeBody(r)
	if err != nil {
		return Entry{}, fmt.Errorf("ledger: encode entry: %w", err)
	}
	if len(body) > maxFrameBody {
		return Entry{}, fmt.Errorf("ledger: entry of %d bytes exceeds the %d-byte limit", len(body), maxFrameBody)
	}
	// Check what replay will read, not what the caller built: an entry that Open would reject
	// must never reach the file.
	dec, err := decodeBody(body)
	if err != nil {
		return Entry{}, fmt.Errorf("ledger: entry does not survive a round trip: %w", err)
	}
	if err := st.check(dec); err != nil {
		return Entry{}, err
	}
	fr := frame(body)
	if _, err := l.f.WriteAt(fr, st.size); err != nil {
		// Cut only this frame: the entries before it are complete and their appenders'
		// fsync still makes them durable.
		return Entry{}, l.fail(fmt.Errorf("%w: entry %d: %w", ErrWriteFailed, dec.Seq, err), st.size)
	}
	h, end := entryHash(st.head, body), st.size+int64(len(fr))
	st.apply(dec, h, end)
	l.pending = append(l.pending, pendingEntry{dec, h, end})
	return entryOf(dec, h), nil
}

// commit returns once e is durable: an fsync since it was written covered it, or this
// appender runs one for every entry written so far. If that fsync fails, every entry not yet
// durable is lost (cut from the file) and its appender told.
func (l *Ledger) commit(e Entry) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.syncLocked(e.Seq)
}

// syncLocked makes the entries up to seq durable; the caller holds syncMu.
func (l *Ledger) syncLocked(seq uint64) error {
	if l.st.seq >= seq {
		return nil
	}
	if l.syncErr != nil {
		return fmt.Errorf("%w: sync entry %d: %w", ErrWriteFailed, seq, l.syncErr)
	}
	l.writeMu.Lock()
	batch := l.pending
	l.pending = nil
	l.writeMu.Unlock()
	if err := l.f.Sync(); err != nil {
		l.syncErr = err
		l.writeMu.Lock()
		l.pending = nil // written after the batch: lost with it
		l.fail(fmt.Errorf("%w: sync entries %d to %d: %w", ErrWriteFailed, l.st.seq+1, l.spec.seq, err), l.st.size)
		l.writeMu.Unlock()
		return fmt.Errorf("%w: sync entry %d: %w", ErrWriteFailed, seq, err)
	}
	first := l.st.seq + 1
	l.stateMu.Lock()
	for _, p := range batch {
		l.st.apply(p.r, p.h, p.end)
	}
	l.stateMu.Unlock()
	// A checkpoint when the batch reaches a multiple of CheckpointEvery; it signs the
	// durable head.
	every := uint64(l.opts.CheckpointEvery)
	if n := l.st.seq; n/every > (first-1)/every {
		if err := l.checkpointLocked(); err != nil {
			// The entries are durable; a missing checkpoint only delays signing them.
			l.log.Error("checkpoint failed", "seq", n, "err", err)
		}
	}
	return nil
}

// entryTime is the time of the entry being appended: the clock's reading, or the last
// entry's time if the clock reads earlier (it was stepped back). Times therefore never go back
// along the chain, and a clock stepped back cannot reopen an expired project. The caller
// holds writeMu.
func (l *Ledger) entryTime() time.Time {
	now := l.opts.Now().UTC()
	if last := l.spec.last; now.Before(last) {
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

// fail stops appends after a failed write or fsync: the entry was never acknowledged, so it is
// cut; if even the cut fails, what the file holds is unknown and the next Open decides (a torn
// tail is cut and recorded, a complete frame is kept: a charge nobody was told of can only
// over-count spend). The file is cut at size; the caller holds writeMu.
func (l *Ledger) fail(err error, size int64) error {
	l.broken = err
	if terr := l.f.Truncate(size); terr != nil {
		l.log.Error("cannot cut a failed append; the next Open will", "err", terr)
	} else if serr := l.f.Sync(); serr != nil {
		l.log.Error("cannot sync the cut of a failed append; the next Open will check it", "err", serr)
	}
	l.log.Error("ledger write failed: no further appends until it is reopened", "err", err)
	return err
}

// checkpointLocked signs (durable entries, head hash) and appends it to STATE/checkpoints;
// the caller holds syncMu.
func (l *Ledger) checkpointLocked() error {
	st := l.st
	if st.seq == 0 || st.seq == l.lastCP {
		return nil
	}
	msg, err := signCheckpoint(l.signer, st.seq, st.head)
	if err != nil {
		return fmt.Errorf("ledger: sign checkpoint: %w", err)
	}
	msg = append(msg, '\n')
	if _, err := l.cpf.WriteAt(msg, l.cpSize); err != nil {
		_ = l.cpf.Truncate(l.cpSize)
		return fmt.Errorf("ledger: write checkpoint: %w", err)
	}
	if err := l.cpf.Sync(); err != nil {
		return fmt.Errorf("ledger: sync checkpoint: %w", err)
	}
	l.cpSize += int64(len(msg))
	l.lastCP = st.seq
	return nil
}

// Close writes a final checkpoint and releases the lock; after a failed write it writes none
// and says so (ErrWriteFailed). Later calls return nil.
func (l *Ledger) Close() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.writeMu.Lock()
	if l.closed {
		l.writeMu.Unlock()
		return nil
	}
	l.closed = true
	written := l.spec.seq
	l.writeMu.Unlock()
	// Entries written by appenders still waiting for their fsync: make them durable (or
	// fail them) before the files close.
	serr := l.syncLocked(written)
	l.writeMu.Lock()
	broken := l.broken
	l.writeMu.Unlock()
	var err error
	if broken == nil {
		err = l.checkpointLocked()
	} else {
		err = fmt.Errorf("ledger: closed without a final checkpoint after a failed write: %w", broken)
		serr = nil // the same failure
	}
	return errors.Join(serr, err, l.closeFiles())
}

func (l *Ledger) closeFiles() error {
	var errs []error
	for _, f := range []file{l.f, l.cpf} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	if l.lockf != nil {
		errs = append(errs, releaseLock(l.lockf))
	}
	return errors.Join(errs...)
}

// Entries returns the entries after sinceSeq, of one project or of all (project "").
func (l *Ledger) Entries(project string, sinceSeq uint64) []Entry {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.st.entriesAfter(project, sinceSeq)
}

// Cached returns the release recorded for this project, normalised query hash, options and
// dataset version, if any, at no cost. It is the first release recorded for that key, byte for
// byte; the caller marks it cached and fills in the current budget_left. Callers ask Cached
// before Charge; two identical queries racing past it are both charged (correct, only
// wasteful) unless the caller lets one wait for the other (singleflight on the same key).
func (l *Ledger) Cached(project, sqlHash, options, datasetVersion string) (json.RawMessage, bool) {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.st.cached(project, sqlHash, options, datasetVersion)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("ledger: sync %s: %w", dir, err)
	}
	return nil
}
