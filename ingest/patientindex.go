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
// held in a map (84 bytes an entry with the map's own), and beyond that they go to disk
// as sorted runs of fixed-size entries, found through the first key of each block (16
// bytes per runBlock entries in memory) and one read of that block.
//
// Entries added later replace earlier ones of the same key, as the map's assignment
// does: a run written later holds later entries, and the map the latest.
//
// add, absorb, spill and reset are for one goroutine; find may be called from many at
// once, while none of those runs (the pipeline's workers read the index of the earlier
// files while apply adds to the current file's).
type patientIndex struct {
	dir    string // where runs are written, created at the first
	maxMem int
	mem    map[refKey]patientRef
	runs   []*patientRun // oldest first

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

func newPatientIndex(dir string, maxMem int) *patientIndex {
	return &patientIndex{dir: dir, maxMem: maxMem, mem: map[refKey]patientRef{}}
}

func (x *patientIndex) empty() bool { return len(x.mem) == 0 && len(x.runs) == 0 }

// add records p as the Patient of k, written out with the rest of the map once it holds
// maxMem entries.
func (x *patientIndex) add(k refKey, p patientRef) error {
	x.mem[k] = p
	if len(x.mem) >= x.maxMem {
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
// newer. A map is taken over rather than copied into an empty one; runs are taken as they
// are, and x's runs merged into one, so that a lookup reads at most one block.
func (x *patientIndex) absorb(newer *patientIndex) error {
	defer func() { newer.mem, newer.runs = map[refKey]patientRef{}, nil }()
	if len(newer.runs) == 0 {
		if x.empty() {
			x.mem = newer.mem
			return nil
		}
		for k, p := range newer.mem {
			if err := x.add(k, p); err != nil {
				return err
			}
		}
		return x.merge()
	}
	// newer's runs are newer than all of x's entries, and its map newer than its runs.
	if len(x.mem) > 0 {
		if err := x.spill(); err != nil {
			return err
		}
	}
	x.runs = append(x.runs, newer.runs...)
	x.mem = newer.mem
	return x.merge()
}

// spill writes the map out as a run and empties it.
func (x *patientIndex) spill() error {
	entries := make([]runEntry, 0, len(x.mem))
	for k, p := range x.mem {
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
	clear(x.mem)
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

func (r *patientRun) close() {
	r.f.Close()
	os.Remove(r.f.Name())
}

// reset empties the index and removes its runs.
func (x *patientIndex) reset() {
	for _, r := range x.runs {
		r.close()
	}
	x.runs, x.mem = nil, map[refKey]patientRef{}
}
