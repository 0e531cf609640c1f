package ingest_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
)

// notNullFields says, for every column the schema declares not_null, which input field
// guarantees it and the quarantine reason of a row without that field. Every column
// declared not_null must be here (and nothing else), so a new declaration needs a row of
// this table and the test's proof that ingest refuses a row without the value.
var notNullFields = map[string]map[string]struct{ field, reason string }{
	"booking": {
		"service_code": {"service_code", "service_code: unknown code"},
		"service_kind": {"service_code", "service_code: unknown code"}, // the service's kind, from the code
		"d_contact":    {"d_contact", "d_contact: missing"},
		"region":       {"region", "region: missing"},
		"status":       {"status", "status: missing"},
	},
}

// The catalog's not_null columns are what the CUP parser guarantees: a booking without
// each such field (blank, or spaces only) is quarantined with the field named, the
// complete booking is written, and the written rows have a value in every not_null column.
// The catalog carries the property for those columns and no other.
func TestNotNullColumnsAreGuaranteedByIngest(t *testing.T) {
	fields := strings.Split(strings.TrimSpace(bookingHeader), ",")
	giuseppe := cf(t, "VRDGPP80A01H501")
	full := strings.Split("B1,,"+giuseppe+",89.13,B,true,2024-03-01,2024-03-02,2024-03-05,2024-03-05,,true,120901,120202,120,cup,booked", ",")
	csv := bookingHeader + strings.Join(full, ",") + "\n"
	wantReasons := map[string]string{}
	line := 2
	seen := map[string]bool{}
	for _, f := range notNullFields["booking"] {
		if seen[f.field] {
			continue
		}
		seen[f.field] = true
		for _, blank := range []string{"", "  "} {
			row := slices.Clone(full)
			i := slices.Index(fields, f.field)
			if i < 0 {
				t.Fatalf("no input field %s", f.field)
			}
			row[0] = fmt.Sprintf("B%d", line)
			row[i] = blank
			csv += strings.Join(row, ",") + "\n"
			line++
			wantReasons[fmt.Sprintf("line %d", line)] = f.reason
		}
	}
	in := t.TempDir()
	src := writeFile(t, in, "cup/extract.csv", csv)
	period, _ := fse.ParsePeriod("2024-01..2025-12")
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Out: dir, Inputs: []string{src}, Period: period})
	if bc := man.Tables["booking"]; bc.Written != 1 || bc.Quarantined != int64(len(wantReasons)) {
		t.Fatalf("booking counts %+v: want the complete row written and %d quarantined", bc, len(wantReasons))
	}
	reasons := map[string]string{}
	for _, q := range quarantineLines(t, dir, man) {
		reasons[q["position"]] = q["reason"]
	}
	if diff := cmp.Diff(wantReasons, reasons); diff != "" {
		t.Errorf("quarantine reasons (-want +got):\n%s", diff)
	}

	cat, err := dataset.ReadCatalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t)
	for _, tab := range cat.Tables {
		var declared []string
		for _, c := range tab.Columns {
			if c.NotNull {
				declared = append(declared, c.Name)
			}
		}
		var want []string
		for c := range notNullFields[tab.Name] {
			want = append(want, c)
		}
		slices.Sort(declared)
		slices.Sort(want)
		if !slices.Equal(declared, want) {
			t.Errorf("table %s: catalog declares not_null %v, the parser guarantees %v", tab.Name, declared, want)
		}
		if tab.Name != "booking" {
			continue
		}
		for _, c := range declared {
			var nulls, rows int
			if err := db.QueryRow(fmt.Sprintf("SELECT count(*) FILTER (WHERE %s IS NULL), count(*) FROM %s", c, table(dir, "booking"))).Scan(&nulls, &rows); err != nil {
				t.Fatal(err)
			}
			if nulls != 0 || rows != 1 {
				t.Errorf("booking.%s: %d NULL of %d rows", c, nulls, rows)
			}
		}
	}
}
