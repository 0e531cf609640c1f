package ledger_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/velo-fse/velo/ledger"
)

func TestExport(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, ledger.Options{Now: newClock().Now})
	createProject(t, l, project("wl", 1, 1e-6))
	c, err := l.Charge(context.Background(), chargeReq("wl", "SELECT count(*) FROM bookings", 0.5, 1e-7))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(context.Background(), c, []byte(`{"rows":[[1]]}`)); err != nil {
		t.Fatal(err)
	}
	live := l.Entries("", 0)
	if got := l.Entries("wl", 2); len(got) != 1 || got[0].Seq != 3 {
		t.Errorf("Entries(wl, 2) = %+v", got)
	}
	closeLedger(t, l)

	entries, projects, err := ledger.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(live, entries); diff != "" {
		t.Errorf("Read differs from the live entries (-live +read):\n%s", diff)
	}
	if len(projects) != 1 || projects[0].Spent != (ledger.Budget{Epsilon: 0.5, Delta: 1e-7}) {
		t.Errorf("projects = %+v", projects)
	}

	var nd bytes.Buffer
	if err := ledger.WriteNDJSON(&nd, entries); err != nil {
		t.Fatal(err)
	}
	var back []ledger.Entry
	sc := bufio.NewScanner(&nd)
	for sc.Scan() {
		var e ledger.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		back = append(back, e)
	}
	if diff := cmp.Diff(entries, back); diff != "" {
		t.Errorf("NDJSON round trip (-want +got):\n%s", diff)
	}

	var cs bytes.Buffer
	if err := ledger.WriteCSV(&cs, entries); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&cs).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || !cmp.Equal(rows[0], ledger.CSVHeader) {
		t.Fatalf("csv rows = %q", rows)
	}
	charge := map[string]string{}
	for i, h := range rows[0] {
		charge[h] = rows[2][i]
	}
	if charge["kind"] != "charge" || charge["epsilon"] != "0.5" || charge["delta"] != "1e-07" || charge["sql"] != "SELECT count(*) FROM bookings" || charge["hash"] != entries[1].Hash {
		t.Errorf("csv charge row = %v", charge)
	}
}
