package ingest_test

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/velo-fse/velo/ingest"
)

// The committed fuzz corpora (testdata/fuzz/Fuzz*) are ingested by Run itself, each entry
// a file: the fuzz targets call the readers piece by piece, and this is the check that Run
// — sniffing, the parallel pipeline, finalize — reads the same inputs without an error and
// with a manifest whose counts reconcile, table by table and with the Parquet written.
func TestFuzzCorpusIngests(t *testing.T) {
	const header = "booking_id,rx_id,patient_cf,service_code,priority,first_access,d_prescription,d_contact,d_first_available,d_appointment,d_delivered,garanzia,provider_id,asl,region,channel,status\n"
	for _, target := range []string{"FuzzFHIRNDJSON", "FuzzFHIRBundle", "FuzzCDA", "FuzzCUPCSV", "FuzzPDF"} {
		t.Run(target, func(t *testing.T) {
			paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
			if err != nil {
				t.Fatal(err)
			}
			if len(paths) == 0 {
				t.Fatalf("no corpus for %s", target)
			}
			in := t.TempDir()
			for i, p := range paths {
				data := readCorpusBytes(t, p)
				if target == "FuzzCUPCSV" {
					// As the target does: records without the header get it.
					first, _, _ := bytes.Cut(bytes.TrimLeft(data, "\ufeff \t\r\n"), []byte("\n"))
					if !bytes.Contains(first, []byte("booking_id")) {
						data = append([]byte(header), data...)
					}
				}
				writeFile(t, in, fmt.Sprintf("%03d", i), string(data))
			}
			dir := filepath.Join(t.TempDir(), "data")
			man := runIngest(t, ingest.Config{Out: dir, Inputs: []string{in}, Workers: 2})
			assertReconciles(t, openDB(t), dir, man)
			var records int64
			for _, f := range man.Batches[0].Inputs {
				records += f.Records
			}
			if records == 0 {
				t.Errorf("the corpus of %s yielded no record at all", target)
			}
		})
	}
}

// readCorpusBytes reads a corpus file of one []byte value ("go test fuzz v1").
func readCorpusBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, rest, _ := strings.Cut(string(b), "\n")
	if head != "go test fuzz v1" {
		t.Fatalf("%s: not a corpus file", path)
	}
	e, err := parser.ParseExprFrom(token.NewFileSet(), path, strings.TrimSpace(rest), 0)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		t.Fatalf("%s: want one []byte value", path)
	}
	lit, ok := call.Args[0].(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		t.Fatalf("%s: want one []byte value", path)
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}
