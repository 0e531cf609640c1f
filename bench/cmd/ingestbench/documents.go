package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/velo-fse/velo/internal/pdftest"
)

// The bundle and pdf formats: one FHIR Bundle file holding a synthetic extract's FHIR
// resources (against the same resources as NDJSON), and the extract's CDA documents each
// injected into a PDF (against the same documents as XML files). Each side runs --runs
// times as its own process; the figures are medians.

// runDocuments measures format "bundle" or "pdf".
func runDocuments(format string, persons, runs int, work string) error {
	_, velo, err := build(work)
	if err != nil {
		return err
	}
	formats := "fhir,csv"
	if format == "pdf" {
		formats = "fhir,csv,cda"
	}
	synthDir, err := extract(velo, work, persons, formats)
	if err != nil {
		return err
	}
	key, err := key(velo, work)
	if err != nil {
		return err
	}
	type side struct {
		name, input string
		records     int64
		bytes       int64
	}
	var sides []side
	switch format {
	case "bundle":
		ndjson := filepath.Join(synthDir, "fhir", "ndjson")
		bundle := filepath.Join(work, fmt.Sprintf("bundle-%d.json", persons))
		entries, size, err := makeBundle(ndjson, bundle)
		if err != nil {
			return err
		}
		// The NDJSON side reads the same resources: the malformed lines the generator
		// plants are left out of both (in a Bundle, one would quarantine all of it).
		clean := filepath.Join(work, fmt.Sprintf("ndjson-%d", persons))
		lines, nsize, err := cleanNDJSON(ndjson, clean)
		if err != nil {
			return err
		}
		sides = []side{{"FHIR Bundle (one file)", bundle, entries, size}, {"FHIR NDJSON (same resources)", clean, lines, nsize}}
	case "pdf":
		pdfDir, xmlDir := filepath.Join(work, fmt.Sprintf("pdf-%d", persons)), filepath.Join(work, fmt.Sprintf("xml-%d", persons))
		docs, psize, xsize, err := makePDFs(filepath.Join(synthDir, "cda"), pdfDir, xmlDir)
		if err != nil {
			return err
		}
		sides = []side{{"PDF with the CDA attached", pdfDir, docs, psize}, {"CDA XML files (same documents)", xmlDir, docs, xsize}}
	}
	fmt.Printf("ingest of %d persons' %s on %d CPUs, %s, median of %d runs\n\n", persons, format, runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, runs)
	unit := "entries/s"
	if format == "pdf" {
		unit = "documents/s"
	}
	fmt.Printf("| input | size | records | wall | %s | MiB/s | peak RSS |\n|---|---:|---:|---:|---:|---:|---:|\n", unit)
	for _, s := range sides {
		var walls []time.Duration
		var rss []int64
		for r := range runs {
			data := filepath.Join(work, "data-"+format)
			os.RemoveAll(data)
			fmt.Fprintf(os.Stderr, "velo ingest %s (run %d)\n", s.input, r+1)
			m, err := timed(velo, "ingest", "--key", key, "--out", data, s.input)
			if err != nil {
				return err
			}
			walls = append(walls, m.wall)
			rss = append(rss, m.maxRSS)
		}
		wall, peak := median(walls), median(rss)
		fmt.Printf("| %s | %.1f MiB | %d | %.2f s | %.0f | %.1f | %.0f MiB |\n", s.name, float64(s.bytes)/(1<<20), s.records,
			wall.Seconds(), float64(s.records)/wall.Seconds(), float64(s.bytes)/(1<<20)/wall.Seconds(), float64(peak)/(1<<20))
	}
	return nil
}

func median[T int64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// ndjsonLines calls fn with every valid JSON line of the extract's NDJSON files,
// Patients first.
func ndjsonLines(dir string, fn func([]byte) error) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if err != nil {
		return err
	}
	sort.SliceStable(files, func(i, j int) bool {
		return strings.HasSuffix(files[i], "Patient.ndjson") && !strings.HasSuffix(files[j], "Patient.ndjson")
	})
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 && json.Valid(line) {
				if err := fn(line); err != nil {
					fh.Close()
					return err
				}
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return err
		}
	}
	return nil
}

// makeBundle writes every resource as an entry of one collection Bundle.
func makeBundle(ndjson, out string) (entries, size int64, err error) {
	f, err := os.Create(out)
	if err != nil {
		return 0, 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(`{"resourceType":"Bundle","type":"collection","entry":[`)
	err = ndjsonLines(ndjson, func(line []byte) error {
		if entries > 0 {
			w.WriteByte(',')
		}
		entries++
		w.WriteString(`{"resource":`)
		w.Write(line)
		_, err := w.WriteString("}")
		return err
	})
	w.WriteString("]}\n")
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	fi, _ := os.Stat(out)
	return entries, fi.Size(), err
}

// cleanNDJSON copies the valid lines into one NDJSON file.
func cleanNDJSON(ndjson, dir string) (lines, size int64, err error) {
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, err
	}
	out := filepath.Join(dir, "resources.ndjson")
	f, err := os.Create(out)
	if err != nil {
		return 0, 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = ndjsonLines(ndjson, func(line []byte) error {
		lines++
		w.Write(line)
		return w.WriteByte('\n')
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	fi, _ := os.Stat(out)
	return lines, fi.Size(), err
}

// makePDFs writes each CDA document of the extract's zips as a PDF with the document
// attached (FlateDecode, as producers embed it) and as an XML file.
func makePDFs(cdaDir, pdfDir, xmlDir string) (docs, pdfBytes, xmlBytes int64, err error) {
	for _, d := range []string{pdfDir, xmlDir} {
		os.RemoveAll(d)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, 0, 0, err
		}
	}
	zips, err := filepath.Glob(filepath.Join(cdaDir, "*.zip"))
	if err != nil {
		return 0, 0, 0, err
	}
	for _, z := range zips {
		zr, err := zip.OpenReader(z)
		if err != nil {
			return 0, 0, 0, err
		}
		for _, zf := range zr.File {
			rc, err := zf.Open()
			if err != nil {
				zr.Close()
				return 0, 0, 0, err
			}
			doc, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				zr.Close()
				return 0, 0, 0, err
			}
			name := fmt.Sprintf("doc-%07d", docs)
			pdf := pdfWithAttachment(doc)
			if err := os.WriteFile(filepath.Join(pdfDir, name+".pdf"), pdf, 0o644); err != nil {
				zr.Close()
				return 0, 0, 0, err
			}
			if err := os.WriteFile(filepath.Join(xmlDir, name+".xml"), doc, 0o644); err != nil {
				zr.Close()
				return 0, 0, 0, err
			}
			docs++
			pdfBytes += int64(len(pdf))
			xmlBytes += int64(len(doc))
		}
		zr.Close()
	}
	return docs, pdfBytes, xmlBytes, nil
}

// pdfWithAttachment is a one-page PDF carrying doc as the embedded file cda.xml.
func pdfWithAttachment(doc []byte) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(doc)
	zw.Close()
	content := "BT /F1 12 Tf 72 712 Td (Referto: vedere il documento CDA allegato) Tj ET"
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(cda.xml) 6 0 R] >> >> /AF [6 0 R] >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
		"<< /Type /Filespec /F (cda.xml) /UF (cda.xml) /AFRelationship /Source /EF << /F 7 0 R >> >>",
		fmt.Sprintf("<< /Type /EmbeddedFile /Subtype /text#2Fxml /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream", z.Len(), z.Bytes()),
	}
	return pdftest.Write(objs, "")
}
