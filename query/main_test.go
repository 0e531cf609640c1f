package query

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/pseudonymize"
	"github.com/velo-fse/velo/synth"
)

var (
	scratch     string
	synthOnce   sync.Once
	synthData   string
	synthErr    error
	testPeriod  = "2024-01..2025-12"
	fixedSecret = bytes.Repeat([]byte{9}, 32)
)

func TestMain(m *testing.M) {
	var err error
	scratch, err = os.MkdirTemp("", "velo-query-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(scratch)
	os.Exit(code)
}

func testPseudonymizer(t testing.TB) *pseudonymize.Pseudonymizer {
	k, err := pseudonymize.GenerateKey(bytes.NewReader(fixedSecret))
	if err != nil {
		t.Fatal(err)
	}
	return pseudonymize.New(k)
}

// synthDataset is a 3000-person synthetic extract, ingested once for the package.
func synthDataset(t testing.TB) string {
	t.Helper()
	synthOnce.Do(func() {
		period, _ := fse.ParsePeriod(testPeriod)
		src := filepath.Join(scratch, "synth")
		if _, synthErr = synth.Generate(context.Background(), synth.Config{Persons: 3000, Seed: 11, Out: src, From: period.From, To: period.To}); synthErr != nil {
			return
		}
		synthData = filepath.Join(scratch, "synth-data")
		_, synthErr = ingest.Run(context.Background(), ingest.Config{Pseudonymizer: testPseudonymizer(t), Out: synthData, Inputs: []string{filepath.Join(src, "cup")}, Period: period, MemoryLimit: "512MB"})
	})
	if synthErr != nil {
		t.Fatal(synthErr)
	}
	return synthData
}

// csvDataset ingests booking CSV rows (without header) into a new dataset.
func csvDataset(t testing.TB, rows ...string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "bookings.csv")
	header := "booking_id,rx_id,patient_cf,service_code,priority,first_access,d_prescription,d_contact,d_first_available,d_appointment,d_delivered,garanzia,provider_id,asl,region,channel,status\n"
	if err := os.WriteFile(src, []byte(header+strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	period, _ := fse.ParsePeriod(testPeriod)
	out := filepath.Join(dir, "data")
	man, err := ingest.Run(context.Background(), ingest.Config{Pseudonymizer: testPseudonymizer(t), Out: out, Inputs: []string{src}, Period: period, MemoryLimit: "256MB"})
	if err != nil {
		t.Fatal(err)
	}
	if q := man.Tables["booking"].Quarantined; q != 0 {
		t.Fatalf("test dataset: %d bookings quarantined", q)
	}
	return out
}

// cfOf makes the i-th valid fake codice fiscale.
func cfOf(t testing.TB, i int) string {
	t.Helper()
	first15 := fmt.Sprintf("TSTPRS%02dA%02dH501", i/28%100, i%28+1)
	if i >= 2800 {
		t.Fatal("cfOf: at most 2800 people")
	}
	ch, err := pseudonymize.CheckLetter(first15)
	if err != nil {
		t.Fatal(err)
	}
	return first15 + string(ch)
}

// booking renders a CSV booking row.
func booking(id int, cf, service, priority, region string, contact string, waitDays int) string {
	asl := region + "201"
	return fmt.Sprintf("B%d,,%s,%s,%s,true,%s,%s,%s,%s,,true,%s901,%s,%s,cup,booked",
		id, cf, service, priority, contact, contact, plusDays(contact, waitDays), plusDays(contact, waitDays), region, asl, region)
}

func plusDays(date string, n int) string {
	t, err := fse.ParsePeriod(date + ".." + date)
	if err != nil {
		panic(err)
	}
	return t.From.AddDate(0, 0, n).Format("2006-01-02")
}

// openEngine opens an engine over data with a new ledger holding one project.
func openEngine(t testing.TB, data string, budget ledger.Budget, allow map[string][]string) (*Engine, *ledger.Ledger, string) {
	t.Helper()
	state := t.TempDir()
	led, err := ledger.Open(state, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if allow == nil {
		allow = map[string][]string{"booking": nil, "person": nil}
	}
	if err := led.CreateProject(context.Background(), "dpo:test", ledger.Project{
		ID: "wl", Purpose: "waiting-list reduction, region by region", LegalBasis: "art. 2-sexies c.1-bis",
		Allow: allow, EpsilonBudget: budget.Epsilon, DeltaBudget: budget.Delta, DefaultEpsilon: 0.5,
	}); err != nil {
		t.Fatal(err)
	}
	eng, err := Open(context.Background(), Config{DataDir: data, Ledger: led, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		eng.Close()
		led.Close()
	})
	return eng, led, state
}

func f64(f float64) *float64 { return &f }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
