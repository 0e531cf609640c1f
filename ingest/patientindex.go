package ingest

import (
	"bufio"
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"

	"github.com/velo-fse/velo/pseudonymize"
)

// patientIndex is the index of the Patients of NDJSON files, which resources of later
// files resolve their subject against: refKey → patientRef. Its memory is bounded, so that
// an ingest's stays within its limit at any number of people: at most maxMem entries are
// held in maps (84 bytes an entry with the map's own), and beyond that they go to disk as
// sorted runs of fixed-size entries, found through the first key of each block (16 bytes
// per runBlock entries in memory) and one read of that block.
//
// The first entries fill mem, which then keeps them: a full index has as many entries in
// memory as it may, and only the rest costs a read. Later entries go to buf, written out
// as a run each time it fills. An entry replaces the earlier one of its key, as a map's
// assignment does: in place where the key is in mem or buf, else as a newer run. So of a
// key, mem holds the latest entry if it holds one, else buf, else the newest run.
//
// add, absorb, spill and reset are for one goroutine; find may be called from many at
// once, while none of those runs (the pipeline's workers read the index of the earlier
// files while apply adds to the current file's).
type patientIndex struct {
	dir            string // where runs are written, created at the first
	memMax, bufMax int    // together maxMem
	mem, buf       map[refKey]patientRef
	runs           []*patientRun // oldest first

	errMu sync.Mutex
	err   error // the first failed read of a run: find cannot return it
}

// patientRun is a run on disk: n entries sorted by key, each key once.
type patientRun struct {
	f     *os.File
	n     int
	first []refKey // the first key of each block of runBlock entries
}

const (
	runEntrySize = len(refKey{}) + len(pseudonymize.PID{}) + 1 // key, pid, state
	runBlock     = 128                                         // entries read per lookup: 4,224 bytes
	// patientEntryBytes is what an entry of the map costs, measured at a million
	// Patients (the map's buckets and growth included).
	patientEntryBytes = 84
	// patientIndexShareDen is the share of an ingest's memory limit each of the two
	// indexes (the earlier files' and the current file's) may hold in memory: 1/12, 83 MB
	// of the default 1GB, about a million Patients. The Go heap's whole share is a quarter.
	patientIndexShareDen = 12
	// patientBufDen: buf gets 1/16 of an index's entries, so that a run holds at least
	// that many.
	patientBufDen = 16
)

// patientIndexEntries is how many entries an index holds in memory under the ingest's
// memory limit; a limit that does not parse (the default's then) gives the default's.
func patientIndexEntries(limit string) int {
	n, ok := parseBytes(limit)
	if !ok {
		n, _ = parseBytes(DefaultMemoryLimit)
	}
	return max(runBlock, int(n/patientIndexShareDen/patientEntryBytes))
}

// newPatientIndex returns an empty index holding at most maxMem entries in memory (at
// least 1), writing its runs in dir.
func newPatientIndex(dir string, maxMem int) *patientIndex {
	bufMax := max(1, maxMem/patientBufDen)
	return &patientIndex{dir: dir, memMax: max(0, maxMem-bufMax), bufMax: bufMax, mem: map[refKey]patientRef{}, buf: map[refKey]patientRef{}}
}

func (x *patientIndex) empty() bool { return len(x.mem) == 0 && len(x.buf) == 0 && len(x.runs) == 0 }

// add records p as the Patient of k.
func (x *patientIndex) add(k refKey, p patientRef) error {
	if _, ok := x.mem[k]; ok || len(x.mem) < x.memMax {
		x.mem[k] = p
		return nil
	}
	x.buf[k] = p
	if len(x.buf) >= x.bufMax {
		return x.spill()
	}
	return nil
}

// find returns the Patient of k. A run that cannot be read finds nothing, and fails the
// index (failed): the ingest stops rather than quarantine a resource whose Patient is
// there.
func (x *patientIndex) find(k refKey) (patientRef, bool) {
	if p, ok := x.mem[k]; ok {
		return p, true
	}
	if p, ok := x.buf[k]; ok {
		return p, true
	}
	for i := len(x.runs) - 1; i >= 0; i-- {
		p, ok, err := x.runs[i].find(k)
		if err != nil {
			x.fail(err)
			return patientRef{}, false
		}
		if ok {
			return p, true
		}
	}
	return patientRef{}, false
}

func (x *patientIndex) fail(err error) {
	x.errMu.Lock()
	defer x.errMu.Unlock()
	if x.err == nil {
		x.err = fmt.Errorf("read the index of the NDJSON Patients: %w", err)
	}
}

// failed returns the first failed read of find, if any.
func (x *patientIndex) failed() error {
	x.errMu.Lock()
	defer x.errMu.Unlock()
	return x.err
}

// absorb adds the entries of newer, which replace x's own of the same keys, and empties
// newer. Into an empty x, newer is taken over rather than copied. x's runs end merged
// into one, so that a lookup reads at most one block.
func (x *patientIndex) absorb(newer *patientIndex) error {
	defer func() {
		newer.mem, newer.buf, newer.runs = map[refKey]patientRef{}, map[refKey]patientRef{}, nil
	}()
	if x.empty() {
		x.mem, x.buf, x.runs = newer.mem, newer.buf, newer.runs
		return x.merge()
	}
	// Of newer's, its runs are the oldest, then its buf; its mem holds other keys than
	// either. A key of newer's runs that x holds in memory is replaced there: the latest
	// entry of a key must be in the first place find looks.
	for _, r := range newer.runs {
		err := r.each(func(k refKey, p patientRef) {
			if _, ok := x.mem[k]; ok {
				x.mem[k] = p
			} else if _, ok := x.buf[k]; ok {
				x.buf[k] = p
			}
		})
		if err != nil {
			return err
		}
	}
	x.runs = append(x.runs, newer.runs...)
	for _, m := range []map[refKey]patientRef{newer.buf, newer.mem} {
		for k, p := range m {
			if err := x.add(k, p); err != nil {
				return err
			}
		}
	}
	return x.merge()
}

// spill writes buf out as a run and empties it.
func (x *patientIndex) spill() error {
	entries := make([]runEntry, 0, len(x.buf))
	for k, p := range x.buf {
		entries = append(entries, newRunEntry(k, p))
	}
	slices.SortFunc(entries, func(a, b runEntry) int { return bytes.Compare(a.key(), b.key()) })
	run, err := x.writeRun(func(w *bufio.Writer) (int, error) {
		for i := range entries {
			if _, err := w.Write(entries[i][:]); err != nil {
				return i, err
			}
		}
		return len(entries), nil
	})
	if err != nil {
		return err
	}
	x.runs = append(x.runs, run)
	clear(x.buf)
	return nil
}

// runEntry is an entry of a run as it is on disk: key, pid, state.
type runEntry [runEntrySize]byte

func newRunEntry(k refKey, p patientRef) runEntry {
	var e runEntry
	copy(e[:], k[:])
	copy(e[len(k):], p.pid[:])
	e[runEntrySize-1] = byte(p.state)
	return e
}

func (e *runEntry) key() []byte { return e[:len(refKey{})] }

func (e *runEntry) patient() patientRef {
	var p patientRef
	copy(p.pid[:], e[len(refKey{}):])
	p.state = outcome(e[runEntrySize-1])
	return p
}

// writeRun writes a run with fill, which writes its entries in key order, each key once.
func (x *patientIndex) writeRun(fill func(*bufio.Writer) (int, error)) (*patientRun, error) {
	if err := os.MkdirAll(x.dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(x.dir, "patients-*.run")
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	n, err := fill(w)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("write the index of the NDJSON Patients to %s: %w", x.dir, err)
	}
	run := &patientRun{f: f, n: n}
	// The first key of each block, read back: the run is in the page cache.
	var k refKey
	for i := 0; i < n; i += runBlock {
		if _, err := f.ReadAt(k[:], int64(i*runEntrySize)); err != nil {
			run.close()
			return nil, fmt.Errorf("read the index of the NDJSON Patients back: %w", err)
		}
		run.first = append(run.first, k)
	}
	return run, nil
}

// merge merges x's runs into one, the later run's entry kept of each key.
func (x *patientIndex) merge() error {
	if len(x.runs) < 2 {
		return nil
	}
	h := make(runHeap, 0, len(x.runs))
	for age, r := range x.runs {
		c := &runCursor{r: bufio.NewReaderSize(io.NewSectionReader(r.f, 0, int64(r.n*runEntrySize)), 1<<16), age: age}
		if err := c.next(); err != nil {
			return err
		}
		if c.ok {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	run, err := x.writeRun(func(w *bufio.Writer) (int, error) {
		n := 0
		for h.Len() > 0 {
			// The newest entry of the smallest key; the others of that key are dropped.
			top := h[0]
			e := top.e
			for h.Len() > 0 && bytes.Equal(h[0].e.key(), e.key()) {
				c := h[0]
				if err := c.next(); err != nil {
					return n, err
				}
				if c.ok {
					heap.Fix(&h, 0)
				} else {
					heap.Pop(&h)
				}
			}
			if _, err := w.Write(e[:]); err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	})
	if err != nil {
		return err
	}
	for _, r := range x.runs {
		r.close()
	}
	x.runs = []*patientRun{run}
	return nil
}

// runCursor reads a run's entries in order for merge.
type runCursor struct {
	r   *bufio.Reader
	age int // the run's place among the merged: a higher one is newer
	e   runEntry
	ok  bool
}

func (c *runCursor) next() error {
	_, err := io.ReadFull(c.r, c.e[:])
	switch {
	case err == nil:
		c.ok = true
		return nil
	case errors.Is(err, io.EOF):
		c.ok = false
		return nil
	}
	return fmt.Errorf("read the index of the NDJSON Patients: %w", err)
}

// runHeap orders cursors by key, then newest first.
type runHeap []*runCursor

func (h runHeap) Len() int { return len(h) }
func (h runHeap) Less(i, j int) bool {
	if c := bytes.Compare(h[i].e.key(), h[j].e.key()); c != 0 {
		return c < 0
	}
	return h[i].age > h[j].age
}
func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(v any)   { *h = append(*h, v.(*runCursor)) }
func (h *runHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// find reads the one block that can hold k.
func (r *patientRun) find(k refKey) (patientRef, bool, error) {
	b := sort.Search(len(r.first), func(i int) bool { return bytes.Compare(r.first[i][:], k[:]) > 0 }) - 1
	if b < 0 {
		return patientRef{}, false, nil
	}
	var buf [runBlock * runEntrySize]byte
	lo := b * runBlock
	n := min(runBlock, r.n-lo)
	if _, err := r.f.ReadAt(buf[:n*runEntrySize], int64(lo*runEntrySize)); err != nil {
		return patientRef{}, false, err
	}
	entry := func(i int) *runEntry { return (*runEntry)(buf[i*runEntrySize:]) }
	i := sort.Search(n, func(i int) bool { return bytes.Compare(entry(i).key(), k[:]) >= 0 })
	if i < n && bytes.Equal(entry(i).key(), k[:]) {
		return entry(i).patient(), true, nil
	}
	return patientRef{}, false, nil
}

// each calls f with each entry of the run, in key order.
func (r *patientRun) each(f func(refKey, patientRef)) error {
	c := &runCursor{r: bufio.NewReaderSize(io.NewSectionReader(r.f, 0, int64(r.n*runEntrySize)), 1<<16)}
	for {
		if err := c.next(); err != nil || !c.ok {
			return err
		}
		f(refKey(c.e.key()), c.e.patient())
	}
}

func (r *patientRun) close() {
	r.f.Close()
	os.Remove(r.f.Name())
}

// reset empties the index and removes its runs.
func (x *patientIndex) reset() {
	for _, r := range x.runs {
		r.close()
	}
	x.runs, x.mem, x.buf = nil, map[refKey]patientRef{}, map[refKey]patientRef{}
}
