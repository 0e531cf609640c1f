package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/notebooks-api/apitest"
	"github.com/velo-fse/velo/query"
)

func chargeCount(t *testing.T, state string) int {
	t.Helper()
	led, err := ledger.Open(state, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	n := 0
	for _, e := range led.Entries("wl", 0) {
		if e.Kind == ledger.KindCharge {
			n++
		}
	}
	return n
}

// velo marginals and velo synthesize on the demo dataset: each charged once, the ledger
// verifies, the Parquet holds only the chosen columns and none of the source's identifiers.
func TestMarginalsAndSynthesizeCommands(t *testing.T) {
	data := apitest.Dataset(t)
	state := filepath.Join(t.TempDir(), "state")
	mustVelo(t, "project", "create", "--state", state, "--id", "wl", "--purpose", "waiting lists", "--legal-basis", "art. 9(2)(h) GDPR",
		"--allow", "booking", "--allow", "person:sex,region", "--epsilon-budget", "10", "--delta-budget", "1e-5", "--default-epsilon", "0.5")
	out := mustVelo(t, "marginals", "--data", data, "--state", state, "--project", "wl", "--table", "booking",
		"--set", "region", "--set", "priority,within_target", "--epsilon", "1", "--delta", "1e-6", "--format", "csv")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 1+21+8 {
		t.Fatalf("CSV: %v, %d records\n%s", err, len(recs), out)
	}
	if chargeCount(t, state) != 1 {
		t.Fatalf("marginals: want one charge")
	}
	// The same tables again, as a dry run: priced with their noise, uncharged.
	out = mustVelo(t, "marginals", "--data", data, "--state", state, "--project", "wl", "--table", "booking",
		"--set", "region", "--set", "priority,within_target", "--epsilon", "0.5", "--delta", "1e-6", "--dry-run")
	var dry query.MarginalsRelease
	if err := json.Unmarshal([]byte(out), &dry); err != nil || !dry.DryRun || len(dry.Tables) != 2 || dry.Tables[0].CIHalfWidth <= 0 || len(dry.Tables[0].Cells) != 0 {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if chargeCount(t, state) != 1 {
		t.Fatalf("the dry run was charged")
	}
	if _, err := velo(t, "marginals", "--data", data, "--state", state, "--project", "wl", "--table", "booking", "--set", "provider_id", "--epsilon", "1", "--delta", "1e-6"); err == nil || !strings.Contains(err.Error(), "no public domain") {
		t.Errorf("a column without a domain: %v", err)
	}

	dir := t.TempDir()
	pq, rep := filepath.Join(dir, "booking.parquet"), filepath.Join(dir, "report.json")
	out = mustVelo(t, "synthesize", "--data", data, "--state", state, "--project", "wl", "--table", "booking", "--method", "mst",
		"--columns", "priority,region,within_target,wait_days,d_contact", "--rows", "3000", "--epsilon", "1", "--delta", "1e-6", "--out", pq, "--report", rep)
	if !strings.Contains(out, "3000 synthetic rows of booking (mst") || !strings.Contains(out, "mean TVD") {
		t.Errorf("summary: %s", out)
	}
	if chargeCount(t, state) != 2 {
		t.Fatalf("synthesize: want one more charge")
	}
	var syn query.Synthetic
	b, err := os.ReadFile(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &syn); err != nil || syn.Rows != 3000 || len(syn.Utility.Marginals) == 0 {
		t.Fatalf("report: %v %+v", err, syn)
	}
	b, err = os.ReadFile(pq)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(rd, pqarrow.ArrowReadProperties{}, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range tbl.Schema().Fields() {
		names = append(names, f.Name)
	}
	tbl.Release()
	rd.Close()
	if !slices.Equal(names, []string{"priority", "region", "within_target", "wait_days", "d_contact"}) || rd.NumRows() != 3000 {
		t.Errorf("columns %v, %d rows", names, rd.NumRows())
	}
	if bytes.Contains(b, []byte("pid")) || bytes.Contains(b, []byte("booking_key")) {
		t.Errorf("an identifier's name is in the file")
	}
	// The same request again, from another process: the same release, from the rows kept
	// in STATE/releases, not charged again.
	pq2 := filepath.Join(dir, "again.parquet")
	out = mustVelo(t, "synthesize", "--data", data, "--state", state, "--project", "wl", "--table", "booking", "--method", "mst",
		"--columns", "priority,region,within_target,wait_days,d_contact", "--rows", "3000", "--epsilon", "1", "--delta", "1e-6", "--out", pq2)
	if !strings.HasPrefix(out, syn.ReleaseID+": 3000 synthetic rows") || !strings.Contains(out, "not charged again") || chargeCount(t, state) != 2 {
		t.Errorf("the same synthesis again (release %s): %d charges; %s", syn.ReleaseID, chargeCount(t, state), out)
	}
	// An identifier is refused before any charge, and the output file is not left behind.
	bad := filepath.Join(dir, "bad.parquet")
	if _, err := velo(t, "synthesize", "--data", data, "--state", state, "--project", "wl", "--table", "booking", "--columns", "region,pid", "--epsilon", "1", "--delta", "1e-6", "--out", bad); err == nil || !strings.Contains(err.Error(), "identifier") {
		t.Errorf("pid as a column: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a refused synthesis left %s", bad)
	}
	if chargeCount(t, state) != 2 {
		t.Errorf("a refusal was charged")
	}
	// Bookings joined to their person: the person's approved columns as person.COLUMN, one
	// charge each; a person column the project may not read is refused before any charge.
	out = mustVelo(t, "marginals", "--data", data, "--state", state, "--project", "wl", "--table", "booking", "--join", "person",
		"--set", "person.sex,priority", "--epsilon", "1", "--delta", "1e-6", "--format", "csv")
	if recs, err := csv.NewReader(strings.NewReader(out)).ReadAll(); err != nil || len(recs) != 1+2*4 || recs[1][1] != "person.sex" {
		t.Errorf("joined marginal: %v\n%s", err, out)
	}
	if _, err := velo(t, "marginals", "--data", data, "--state", state, "--project", "wl", "--table", "booking", "--join", "person",
		"--set", "person.birth_year", "--epsilon", "1", "--delta", "1e-6"); err == nil || !strings.Contains(err.Error(), "birth_year") {
		t.Errorf("a person column outside the allow-list: %v", err)
	}
	joined := filepath.Join(dir, "joined.parquet")
	mustVelo(t, "synthesize", "--data", data, "--state", state, "--project", "wl", "--table", "booking", "--join", "person", "--method", "mst",
		"--columns", "priority,person.sex,person.region", "--rows", "500", "--epsilon", "1", "--delta", "1e-6", "--out", joined)
	if got := parquetColumns(t, joined); !slices.Equal(got, []string{"priority", "person.sex", "person.region"}) {
		t.Errorf("joined synthesis columns %v", got)
	}
	if n := chargeCount(t, state); n != 4 {
		t.Errorf("%d charges, want 4", n)
	}
	if out := mustVelo(t, "ledger", "verify", "--state", state); !strings.Contains(strings.ToLower(out), "ok") {
		t.Errorf("ledger verify: %s", out)
	}
}

func parquetColumns(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var names []string
	for i := range rd.MetaData().Schema.NumColumns() {
		names = append(names, rd.MetaData().Schema.Column(i).Name())
	}
	return names
}
