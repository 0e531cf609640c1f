package ingest_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velo-fse/velo/ingest"
)

// A header that names every column when split at commas (which is how a file is taken for
// a booking extract) but not when parsed as CSV is refused, naming the file and the
// column: its records would be read into the wrong columns.
func TestCUPHeaderParsedAsCSV(t *testing.T) {
	ps, _ := testKey(t)
	src := writeFile(t, t.TempDir(), "cup.csv", strings.Replace(bookingHeader, "booking_id,rx_id", `"booking_id,rx_id"`, 1)+
		`"B1,120A00000000001",RSSMRA85T10A562S,89.7A.3,U,true,2024-03-01,2024-03-01,2024-03-03,2024-03-03,2024-03-03,true,120901,120201,120,cup,delivered`+"\n")
	_, err := ingest.Run(context.Background(), ingest.Config{Pseudonymizer: ps, Out: filepath.Join(t.TempDir(), "data"), Inputs: []string{src}, MemoryLimit: "256MB"})
	if err == nil || !strings.Contains(err.Error(), "cup.csv") || !strings.Contains(err.Error(), "no column booking_id") {
		t.Fatalf("Run: %v, want the header refused", err)
	}
}
