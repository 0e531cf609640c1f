// Package ledger is Velo's privacy ledger: the append-only, hash-chained record of every
// project, budget grant, charge, refund and release, of the data permit's workflow (request,
// approve, reject, suspend, resume: permit.go), and the release cache built from it.
//
// Invariants:
//
//   - A charge is durable before any data is read. Charge checks the project's expiry, its
//     per-query caps and its remaining budget, appends the charge and fsyncs the file before it
//     returns; the caller reads data only after that. A crash can therefore over-count spend
//     (a charge without a release) but never yields a free answer.
//   - A failed write or fsync (disk full, I/O error) is never acknowledged: the call fails
//     with ErrWriteFailed, the partial entry is cut, and the ledger takes no further appends
//     until it is reopened (Open then cuts whatever the failure left as a torn tail).
//   - Budgets are never overdrawn, whatever the concurrency: one writer per process (a mutex)
//     and one process per state directory (an flock on STATE/ledger.lock) serialise the
//     check-then-write of every charge, against every entry written before it, durable or not.
//   - Group commit: concurrent appends share fsyncs. An appender writes its entry, then waits
//     for an fsync that covers it; the first waiter not yet covered runs one fsync for every
//     entry written so far. Durability is a prefix of the file, so an entry is durable only
//     with every entry before it; readers (Project, Cached, Entries) see an entry only once it
//     is durable; a failed fsync fails every entry not yet durable and cuts them.
//   - The chain detects any change. Each entry's hash is
//     SHA-256("velo/ledger/v1\x00" || previous entry hash || entry body), each frame carries a
//     CRC-32C of its body, and Ed25519-signed checkpoints (a signed note over the entry count
//     and the head hash) pin the history, so changing, dropping or reordering any byte of the
//     ledger makes Verify fail and names the entry.
//   - Spend is exact: costs and budgets are fixed-point integers (epsilon in units of 1e-12,
//     delta in units of 1e-18), never sums of floats. A charge is rounded up to the next unit
//     and a budget down, so rounding can only over-count spend.
//
// Times: an entry's time is the writer's clock (Options.Now) when it was appended, in UTC,
// unless the clock then read earlier than the previous entry's time (a clock stepped back):
// the entry then takes the previous entry's time, and a warning is logged once. Times never
// decrease along the chain (replay and Verify check it), so an expiry once passed stays
// passed, and an entry's time is never earlier than the clock's reading when it was written.
// The order of events is the sequence number; equal times are allowed. After a clock is
// stepped far forward and then back, new entries keep the forward time until the clock
// catches up.
//
// The on-disk format of STATE/ledger is a sequence of frames:
//
//	frame = length (4 bytes, big-endian) || CRC-32C(body) (4 bytes, big-endian) || body
//
// where body is the entry's JSON as encoding/json writes the unexported record struct: fixed
// field order, sorted map keys, no HTML escaping, amounts as exact decimals. Entries are
// numbered from 1; "prev" in the body is the hex hash of the previous entry (64 zeros for the
// first). Hashes are over the body bytes exactly as stored.
//
// A torn tail (a last frame shorter than its header says, or a tail of zeros: a write that was
// never acknowledged) is cut by Open and a "recovery" entry records how many bytes were cut. A
// complete frame with a bad checksum, anywhere, is corruption: Open refuses with ErrCorrupt.
//
// Checkpoints are appended to STATE/checkpoints as signed notes (golang.org/x/mod/sumdb/note),
// separated by blank lines:
//
//	velo/ledger/v1
//	<number of entries>
//	<base64 hash of the last entry>
//
//	— velo-ledger <base64 key hash and Ed25519 signature>
//
// signed with the key in STATE/checkpoint.key (0600, created on first use); the verifier key is
// STATE/checkpoint.pub. The DPO keeps copies of both: Verify with their copies detects a
// rewritten history even by someone who can write STATE.
//
// The PostgreSQL ledger (PG, OpenPostgres) keeps the same entries — the same bodies, the
// same chain, the same signed notes — in tables, for several servers sharing one ledger;
// every invariant above holds for it, with a transaction-level advisory lock in place of
// the mutex and the flock, and a commit in place of the fsync (see PG). Both implement
// Store. DumpPostgres writes it in the file format above, which Verify checks offline.
package ledger
