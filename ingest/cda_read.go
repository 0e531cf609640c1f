package ingest

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/pseudonymize"
)

// CDA documents go through runPipeline one document per unit: the producer reads a
// document's bytes (a file, or a zip entry), a worker parses and maps it, and the stage
// applies its records in input order. Memory is bounded by the pipeline's units in
// flight and by cdaBudget, which caps the bytes of documents held at once whatever
// their size.

// cdaBudgetMiB is how many MiB of CDA documents may be held in memory at once; it is
// at least the size limit of one document.
const cdaBudgetMiB = 4 * (maxCDABytes >> 20)

// cdaBudget is a byte budget: the (single) producer acquires a document's size before
// handing it on, the worker that maps it releases it.
type cdaBudget chan struct{}

func newCDABudget() cdaBudget {
	b := make(cdaBudget, cdaBudgetMiB)
	for range cdaBudgetMiB {
		b <- struct{}{}
	}
	return b
}

func budgetUnits(n int) int { return max(1, (n+(1<<20)-1)>>20) }

func (b cdaBudget) acquire(ctx context.Context, n int) error {
	for range budgetUnits(n) {
		select {
		case <-b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (b cdaBudget) release(n int) {
	for range budgetUnits(n) {
		b <- struct{}{}
	}
}

// cdaWork maps one document unit.
func (m *mapper) cdaWork(u unit) (recs []record) {
	defer recoverDocument(cdaPos(u.cdaPrefix, 0), &recs)
	m.hook(cdaPos(u.cdaPrefix, 0))
	if u.cdaNotCDA {
		return []record{{outcome: outIgnored, reason: "zip entry is not an HL7 CDA R2 document", pos: cdaPos(u.cdaPrefix, 0), docLocal: -1}}
	}
	if u.cdaReason != "" {
		return []record{{outcome: outQuarantined, reason: u.cdaReason, pos: cdaPos(u.cdaPrefix, 0), docLocal: -1}}
	}
	if u.pdf {
		return m.pdfWork(u.cda, u.cdaPrefix)
	}
	return m.mapCDA(u.cda, u.cdaPrefix)
}

var reasonTooLarge = fmt.Sprintf("document larger than %d MiB", maxCDABytes>>20)

// ingestCDAFiles reads a run of CDA files, each one document, through one pipeline so
// that many small files are parsed in parallel. Each file is its own input in the
// manifest.
func (st *stage) ingestCDAFiles(ctx context.Context, cfg Config, m *mapper, files []inputFile, progress func(int64)) ([]dataset.InputFile, error) {
	ins := make([]dataset.InputFile, len(files))
	sums := make([]string, len(files))
	sizes := make([]int64, len(files))
	for i, f := range files {
		ins[i] = dataset.InputFile{Path: pseudonymize.MaskIdentifiers(f.path), Format: f.format}
	}
	budget := newCDABudget()
	var (
		mu    sync.Mutex
		order []int // input of each unit emitted, in order: apply consumes it
	)
	err := runPipeline(ctx, cfg.Workers,
		func(emit func(unit) error) error {
			var done int64
			for i, f := range files {
				u, n, sum, err := readCDAFile(f.path, f.size, func(k int64) { progress(done + k) })
				if err != nil {
					return fmt.Errorf("read %s: %w", ins[i].Path, err)
				}
				done += n
				sums[i], sizes[i] = sum, n
				if f.format == formatPDF {
					u.pdf = true
					if u.cdaReason == reasonTooLarge {
						u.cdaReason = reasonPDFTooLarge
					}
				}
				if err := budget.acquire(ctx, len(u.cda)); err != nil {
					return err
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				if err := emit(u); err != nil {
					return err
				}
			}
			return nil
		},
		func(u unit) []record {
			defer budget.release(len(u.cda))
			return m.cdaWork(u)
		},
		func(recs []record) error {
			mu.Lock()
			i := order[0]
			order = order[1:]
			mu.Unlock()
			return st.apply(&ins[i], recs)
		})
	if err != nil {
		return nil, fmt.Errorf("ingest CDA documents: %w", err)
	}
	for i := range ins {
		ins[i].Bytes, ins[i].SHA256 = sizes[i], sums[i]
	}
	return ins, nil
}

// readCDAFile reads one document file, hashing all of it; a file beyond the size limit
// is hashed but not kept.
func readCDAFile(path string, size int64, progress func(int64)) (unit, int64, string, error) {
	var u unit
	fh, err := os.Open(path)
	if err != nil {
		return u, 0, "", err
	}
	defer fh.Close()
	h := sha256.New()
	hr := &hashingReader{r: fh, h: h, progress: progress}
	var buf bytes.Buffer
	buf.Grow(int(min(size, maxCDABytes) + 512))
	if _, err := io.Copy(&buf, io.LimitReader(hr, maxCDABytes+1)); err != nil {
		return u, 0, "", err
	}
	if buf.Len() > maxCDABytes {
		buf = bytes.Buffer{}
		u.cdaReason = reasonTooLarge
		if _, err := io.Copy(io.Discard, hr); err != nil {
			return u, 0, "", err
		}
	}
	u.cda = buf.Bytes()
	return u, hr.n, hex.EncodeToString(h.Sum(nil)), nil
}

// ingestCDAZip reads a zip archive of CDA documents, one per entry; positions name the
// entry (identifier-shaped parts of its name masked).
func (st *stage) ingestCDAZip(ctx context.Context, cfg Config, m *mapper, f inputFile, in *dataset.InputFile) error {
	zr, err := zip.OpenReader(f.path)
	if err != nil {
		return st.apply(in, []record{{outcome: outQuarantined, reason: "not a readable zip archive", pos: "archive", docLocal: -1}})
	}
	defer zr.Close()
	budget := newCDABudget()
	return runPipeline(ctx, cfg.Workers,
		func(emit func(unit) error) error {
			for _, zf := range zr.File {
				if strings.HasSuffix(zf.Name, "/") {
					continue // a directory
				}
				name := pseudonymize.MaskIdentifiers(zf.Name)
				if len(name) > 200 {
					name = name[:200] + "..."
				}
				u := unit{cdaPrefix: "entry " + name + " "}
				u.cda, u.cdaReason = readZipEntry(zf)
				// Like a file in a directory, an entry that does not even name a
				// ClinicalDocument is not one (an archive may carry a readme, or be an
				// office file): it is counted as ignored, not quarantined. A PDF is read
				// for its CDA attachments.
				if u.cdaReason == "" && bytes.HasPrefix(u.cda, []byte("%PDF-")) {
					u.pdf = true
				} else if u.cdaReason == "" && !namesClinicalDocument(u.cda[:min(len(u.cda), 64<<10)]) {
					u.cda, u.cdaNotCDA = nil, true
				}
				if err := budget.acquire(ctx, len(u.cda)); err != nil {
					return err
				}
				if err := emit(u); err != nil {
					return err
				}
			}
			return nil
		},
		func(u unit) []record {
			defer budget.release(len(u.cda))
			return m.cdaWork(u)
		},
		func(recs []record) error { return st.apply(in, recs) })
}

// readZipEntry decompresses one entry, never more than the size limit (the header's
// sizes are not trusted: a zip bomb stops at the limit).
func readZipEntry(zf *zip.File) ([]byte, string) {
	rc, err := zf.Open()
	if err != nil {
		return nil, "zip entry cannot be read (unsupported compression or corrupt)"
	}
	defer rc.Close()
	var buf bytes.Buffer
	buf.Grow(int(min(zf.UncompressedSize64, maxCDABytes) + 512))
	_, err = io.Copy(&buf, io.LimitReader(rc, maxCDABytes+1))
	switch {
	case buf.Len() > maxCDABytes:
		return nil, reasonTooLarge
	case err != nil:
		return nil, "zip entry is corrupt"
	}
	return buf.Bytes(), ""
}
