package synth_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/pseudonymize"
	"github.com/velo-fse/velo/synth"
)

// One extract shared by the tests that only read it.
var (
	shared    synth.Report
	sharedDir string
)

const sharedPersons = 5000

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "synth-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedDir = filepath.Join(dir, "out")
	shared, err = synth.Generate(context.Background(), synth.Config{Persons: sharedPersons, Seed: 7, Bundles: 25, Out: sharedDir})
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func generate(t *testing.T, cfg synth.Config) (string, synth.Report) {
	t.Helper()
	cfg.Out = filepath.Join(t.TempDir(), "out")
	rep, err := synth.Generate(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Out, rep
}

// readTree returns every file under dir by relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestDeterministic(t *testing.T) {
	cfg := synth.Config{Persons: 2100, Seed: 11, Bundles: 3, Workers: 1}
	dirA, repA := generate(t, cfg)
	cfg.Workers = 5
	dirB, repB := generate(t, cfg)
	a, b := readTree(t, dirA), readTree(t, dirB)
	if len(a) != len(b) {
		t.Fatalf("runs wrote %d and %d files", len(a), len(b))
	}
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			t.Errorf("%s differs between 1 and 5 workers", name)
		}
	}
	if !reflect.DeepEqual(repA, repB) {
		t.Error("reports differ between 1 and 5 workers")
	}
	if _, ok := a["synth.json"]; !ok || len(a) != 3+11 {
		t.Errorf("wrote %d files, want 14 (10 data files, 3 bundles, synth.json)", len(a))
	}

	cfg.Seed = 12
	dirC, _ := generate(t, cfg)
	c := readTree(t, dirC)
	for _, name := range []string{"fhir/ndjson/Patient.ndjson", "cup/bookings.csv", "fhir/bundles/bundle-000001.json"} {
		if bytes.Equal(a[name], c[name]) {
			t.Errorf("%s is the same for seeds 11 and 12", name)
		}
	}
}

// More bundles must not change anything else: a person's bundle is drawn last.
func TestBundlesDoNotChangeNDJSON(t *testing.T) {
	dirA, _ := generate(t, synth.Config{Persons: 600, Seed: 3})
	dirB, _ := generate(t, synth.Config{Persons: 600, Seed: 3, Bundles: 600})
	for _, name := range []string{"fhir/ndjson/Patient.ndjson", "fhir/ndjson/Observation.ndjson", "cup/bookings.csv", "optout.txt"} {
		a, _ := os.ReadFile(filepath.Join(dirA, name))
		b, _ := os.ReadFile(filepath.Join(dirB, name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s changes with --bundles", name)
		}
	}
}

func TestRefusesNonEmptyOut(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := synth.Generate(context.Background(), synth.Config{Persons: 10, Out: dir})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("err = %v, want a not-empty error", err)
	}
	// An existing empty directory is fine.
	if _, err := synth.Generate(context.Background(), synth.Config{Persons: 10, Out: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  synth.Config
		want string
	}{
		{"no people", synth.Config{Out: "x"}, "Persons"},
		{"too many bundles", synth.Config{Persons: 2, Bundles: 3, Out: "x"}, "Bundles"},
		{"no out", synth.Config{Persons: 2}, "Out"},
		{"reversed period", synth.Config{Persons: 2, Out: "x", From: fse.Date(2025, 1, 1), To: fse.Date(2024, 1, 1)}, "period"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := synth.Generate(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := synth.Generate(ctx, synth.Config{Persons: 5000, Out: filepath.Join(t.TempDir(), "out")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("before the start: err = %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	var calls int
	_, err = synth.Generate(ctx, synth.Config{Persons: 20000, Workers: 3, Out: filepath.Join(t.TempDir(), "out"),
		OnProgress: func(int64) { calls++; cancel() }})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("midway: err = %v after %d chunks, want context.Canceled after 1", err, calls)
	}
}

// A period other than the default scales the volume and keeps every regular date in it.
func TestShortPeriod(t *testing.T) {
	from, to := fse.Date(2025, 3, 1), fse.Date(2025, 3, 31)
	dir, rep := generate(t, synth.Config{Persons: 800, Seed: 5, From: from, To: to})
	if rep.Period != (synth.Period{From: "2025-03-01", To: "2025-03-31"}) {
		t.Fatalf("period = %+v", rep.Period)
	}
	got := reconcile(t, dir, from, to)
	for name, want := range rep.Expected {
		if got[name] != want {
			t.Errorf("%s: ingest would count %+v, report says %+v", name, got[name], want)
		}
	}
}

type patientJSON struct {
	ID         string `json:"id"`
	Identifier []struct {
		System string `json:"system"`
		Value  string `json:"value"`
	} `json:"identifier"`
	Gender    string `json:"gender"`
	BirthDate string `json:"birthDate"`
	Address   []struct {
		Line  []string `json:"line"`
		XLine []struct {
			Extension []struct {
				URL         string `json:"url"`
				ValueString string `json:"valueString"`
			} `json:"extension"`
		} `json:"_line"`
		City  string `json:"city"`
		State string `json:"state"`
	} `json:"address"`
	ManagingOrganization struct {
		Identifier struct {
			Value string `json:"value"`
		} `json:"identifier"`
	} `json:"managingOrganization"`
}

func (p *patientJSON) cf() string {
	for _, id := range p.Identifier {
		if id.System == fse.SystemCodiceFiscale {
			return id.Value
		}
	}
	return ""
}

func eachLine(t *testing.T, path string, fn func(line []byte)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fn(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestPatients(t *testing.T) {
	var bad, regional int64
	kinds := map[pseudonymize.IDKind]int64{}
	var omocode int64
	canon := map[string]bool{}
	eachLine(t, filepath.Join(sharedDir, "fhir/ndjson/Patient.ndjson"), func(line []byte) {
		var p patientJSON
		if err := json.Unmarshal(line, &p); err != nil {
			t.Fatalf("Patient line is not JSON: %v", err)
		}
		if len(p.Identifier) == 2 {
			regional++
		}
		id, err := pseudonymize.ParseIdentifier(p.cf())
		if err != nil {
			if !errors.Is(err, pseudonymize.ErrCheckLetter) {
				t.Errorf("patient identifier rejected for another reason than the check letter: %v", err)
			}
			bad++
			return
		}
		if canon[id.Canonical] {
			t.Error("two people share a canonical identifier")
		}
		canon[id.Canonical] = true
		kinds[id.Kind]++
		if id.Omocode {
			omocode++
		}
		if id.Odd {
			t.Error("a generated codice fiscale is structurally odd")
		}
		if birth, ok := pseudonymize.BirthOf(id); ok {
			bd, err := time.Parse(time.DateOnly, p.BirthDate)
			if err != nil {
				t.Fatalf("birthDate %q: %v", p.BirthDate, err)
			}
			if birth.Female != (p.Gender == "female") || birth.YY != bd.Year()%100 || birth.Month != int(bd.Month()) || birth.Day != bd.Day() {
				t.Errorf("codice fiscale disagrees with gender %s and birthDate %s", p.Gender, p.BirthDate)
			}
		}
		if len(p.Address) != 1 || len(p.Address[0].XLine) != 1 || len(p.Address[0].XLine[0].Extension) != 1 {
			t.Fatal("address without a census tract")
		}
		istat := p.Address[0].XLine[0].Extension[0].ValueString
		cm, reg, ok := fse.ComuneByISTAT(istat)
		if !ok || reg.Code != p.Address[0].State || cm.Name != p.Address[0].City {
			t.Errorf("address comune %s / state %s / city %s inconsistent", istat, p.Address[0].State, p.Address[0].City)
		}
		if !slices.Contains(reg.ASLs, p.ManagingOrganization.Identifier.Value) {
			t.Errorf("managing ASL %s is not of region %s", p.ManagingOrganization.Identifier.Value, reg.Code)
		}
	})
	ids := shared.Identifiers
	if bad != shared.Faults.PatientBadCheckLetter || bad != ids.BadCheckLetter || bad == 0 {
		t.Errorf("%d Patients with a bad check letter, report says %d", bad, shared.Faults.PatientBadCheckLetter)
	}
	if kinds[pseudonymize.KindCodiceFiscale] != ids.CodiceFiscale+ids.Omocode || omocode != ids.Omocode ||
		kinds[pseudonymize.KindSTP] != ids.STP || kinds[pseudonymize.KindENI] != ids.ENI || kinds[pseudonymize.KindTemporary] != ids.Temporary {
		t.Errorf("identifier kinds %v (omocode %d), report says %+v", kinds, omocode, ids)
	}
	if ids.Omocode == 0 || ids.STP+ids.ENI == 0 {
		t.Errorf("no omocode or STP/ENI people among %d: %+v", sharedPersons, ids)
	}
	if share := float64(regional) / sharedPersons; share < 0.25 || share > 0.35 || regional != shared.Variants.PatientRegionalID {
		t.Errorf("%d Patients with a regional id (%.2f), report says %d", regional, share, shared.Variants.PatientRegionalID)
	}
}

func TestBookings(t *testing.T) {
	f, err := os.Open(filepath.Join(sharedDir, "cup/bookings.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil || strings.Join(header, ",") != synth.BookingsHeader {
		t.Fatalf("header %v, %v", header, err)
	}
	type share struct{ in, n int }
	byClass := map[string]*share{}
	byRegion := map[string]*share{}
	var truncated, unknownService, rows int64
	ids := map[string]bool{}
	for {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows++
		if len(row) != 17 {
			truncated++
			continue
		}
		if ids[row[0]] {
			t.Errorf("booking id repeats")
		}
		ids[row[0]] = true
		reg, ok := fse.RegionByCode(row[14])
		if !ok || !slices.Contains(reg.ASLs, row[13]) || !strings.HasPrefix(row[12], reg.Code) || len(row[12]) != 6 {
			t.Errorf("region %s / asl %s / provider %s inconsistent", row[14], row[13], row[12])
		}
		svc, ok := fse.ServiceByCode(row[3])
		if !ok {
			unknownService++
			continue
		}
		dates := make([]time.Time, 4)
		for i := range dates {
			if dates[i], err = time.Parse(time.DateOnly, row[6+i]); err != nil {
				break
			}
		}
		if err != nil || row[4] == "X" {
			continue // a deliberately bad date or class, counted in the report
		}
		if !slices.IsSortedFunc(dates, func(a, b time.Time) int { return a.Compare(b) }) {
			t.Errorf("dates out of order: %v", row[6:10])
		}
		if (row[4] == "") == (row[5] == "true") {
			t.Errorf("priority %q with first_access %s", row[4], row[5])
		}
		if row[16] == "delivered" {
			if d, err := time.Parse(time.DateOnly, row[10]); err != nil || d.Before(dates[3]) || d.Sub(dates[3]) > 48*time.Hour {
				t.Errorf("delivered on %q for an appointment on %s", row[10], row[9])
			}
		} else if row[10] != "" {
			t.Errorf("status %s with a delivery date", row[16])
		}
		if row[11] == "true" && !dates[3].Equal(dates[2]) {
			t.Errorf("garanzia with appointment %s after first availability %s", row[9], row[8])
		}
		if row[4] == "" || row[11] != "true" {
			continue // monitoring leaves out follow-ups and refusals of the first date
		}
		target, _ := fse.MaxWaitDays(fse.Priority(row[4]), svc.Kind)
		in := 0
		if int(dates[3].Sub(dates[1]).Hours()/24) <= target {
			in = 1
		}
		for _, k := range []struct {
			m   map[string]*share
			key string
		}{{byClass, row[4]}, {byRegion, row[14]}} {
			if k.m[k.key] == nil {
				k.m[k.key] = &share{}
			}
			k.m[k.key].in += in
			k.m[k.key].n++
		}
	}
	if truncated != shared.Faults.BookingTruncated || truncated == 0 {
		t.Errorf("%d truncated lines, report says %d", truncated, shared.Faults.BookingTruncated)
	}
	if unknownService != shared.Faults.BookingUnknownService {
		t.Errorf("%d unknown service codes, report says %d", unknownService, shared.Faults.BookingUnknownService)
	}
	if mean := float64(rows) / sharedPersons; mean < 2 || mean > 3 {
		t.Errorf("%.2f bookings per person, want about 2.5", mean)
	}
	for _, p := range fse.Priorities {
		s := byClass[string(p)]
		if s == nil || s.n < 50 {
			t.Fatalf("class %s: too few bookings", p)
		}
		if v := float64(s.in) / float64(s.n); v < 0.55 || v > 0.92 {
			t.Errorf("class %s: %.2f within target, want a realistic 0.55-0.92", p, v)
		}
	}
	lo, hi := 1.0, 0.0
	for _, s := range byRegion {
		if s.n < 200 {
			continue
		}
		v := float64(s.in) / float64(s.n)
		lo, hi = min(lo, v), max(hi, v)
	}
	if hi-lo < 0.08 {
		t.Errorf("within-target share spans only %.2f..%.2f across regions", lo, hi)
	}
}

// Every booking's prescription is a ServiceRequest with the same NRE, and NRE numbers
// never repeat across bookings and drug prescriptions.
func TestPrescriptionNumbers(t *testing.T) {
	rx := map[string]bool{}
	f, err := os.Open(filepath.Join(sharedDir, "cup/bookings.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var noRx int64
	for _, row := range rows[1:] {
		if row[1] == "" {
			noRx++
			continue
		}
		if len(row[1]) != 15 || rx[row[1]] {
			t.Errorf("bad or repeated NRE of length %d", len(row[1]))
		}
		rx[row[1]] = true
	}
	if noRx != shared.Variants.BookingNoRx {
		t.Errorf("%d bookings without NRE, report says %d", noRx, shared.Variants.BookingNoRx)
	}
	type withNRE struct {
		Identifier []struct{ Value string } `json:"identifier"`
	}
	seen := 0
	eachLine(t, filepath.Join(sharedDir, "fhir/ndjson/ServiceRequest.ndjson"), func(line []byte) {
		var v withNRE
		if err := json.Unmarshal(line, &v); err != nil || len(v.Identifier) != 1 || !rx[v.Identifier[0].Value] {
			t.Fatalf("ServiceRequest without a booking's NRE: %v", err)
		}
		seen++
	})
	if seen != len(rx) {
		t.Errorf("%d ServiceRequests for %d booked prescriptions", seen, len(rx))
	}
	eachLine(t, filepath.Join(sharedDir, "fhir/ndjson/MedicationRequest.ndjson"), func(line []byte) {
		var v withNRE
		if err := json.Unmarshal(line, &v); err != nil || len(v.Identifier) != 1 || rx[v.Identifier[0].Value] {
			t.Fatalf("MedicationRequest NRE missing or shared: %v", err)
		}
		rx[v.Identifier[0].Value] = true
	})
}

func TestCountsAddUp(t *testing.T) {
	var faults int64
	for name, st := range shared.Files {
		if name == "optout.txt" {
			if st.Lines != shared.OptedOut {
				t.Errorf("optout.txt has %d lines, report says %d people", st.Lines, shared.OptedOut)
			}
			continue
		}
		o, ok := shared.Expected[name]
		if !ok {
			t.Errorf("%s has no expected outcome", name)
			continue
		}
		if o.Records != st.Records || o.Quarantined+o.OptedOut+o.OutsidePeriod > o.Records {
			t.Errorf("%s: expected %+v does not add up with %d records", name, o, st.Records)
		}
		switch {
		case strings.HasSuffix(name, ".ndjson") && st.Lines != st.Records,
			strings.HasSuffix(name, ".csv") && st.Lines != st.Records+1:
			t.Errorf("%s: %d lines for %d records", name, st.Lines, st.Records)
		}
		b, err := os.ReadFile(filepath.Join(sharedDir, name))
		if err != nil || int64(len(b)) != st.Bytes || int64(bytes.Count(b, []byte{'\n'})) != st.Lines {
			t.Errorf("%s: file does not match its stats %+v (%v)", name, st, err)
		}
	}
	if len(shared.Expected) != 9+shared.Bundles {
		t.Errorf("%d expected entries, want %d", len(shared.Expected), 9+shared.Bundles)
	}
	f := shared.Faults
	faults = f.BookingBadDate + f.BookingUnknownService + f.BookingUnknownPriority + f.BookingTruncated
	if q := shared.Expected["cup/bookings.csv"].Quarantined; q < faults {
		t.Errorf("bookings: %d quarantined for %d faults", q, faults)
	}
	for _, o := range []struct {
		name string
		n    int64
	}{
		{"booking bad date", f.BookingBadDate}, {"booking unknown service", f.BookingUnknownService},
		{"booking unknown priority", f.BookingUnknownPriority}, {"booking truncated", f.BookingTruncated},
		{"observation truncated", f.ObservationTruncated}, {"observation bad date", f.ObservationBadDate},
		{"outside period bookings", shared.Expected["cup/bookings.csv"].OutsidePeriod},
		{"outside period observations", shared.Expected["fhir/ndjson/Observation.ndjson"].OutsidePeriod},
		{"opted out", shared.OptedOut}, {"omocode bookings", shared.Variants.BookingOmocode},
		{"lower-case opt-outs", shared.Variants.OptOutLowercase}, {"omocode opt-outs", shared.Variants.OptOutOmocode},
	} {
		if o.n == 0 {
			t.Errorf("no %s among %d people", o.name, sharedPersons)
		}
	}
	js, err := os.ReadFile(filepath.Join(sharedDir, "synth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var saved synth.Report
	if err := json.Unmarshal(js, &saved); err != nil || !reflect.DeepEqual(saved, shared) {
		t.Errorf("synth.json differs from the returned report (%v)", err)
	}
}

// TestExpectedMatchesIngestRules applies the ingest rules the report documents to the
// files and checks the report's expected outcome, file by file, exactly.
func TestExpectedMatchesIngestRules(t *testing.T) {
	got := reconcile(t, sharedDir, synth.DefaultFrom, synth.DefaultTo)
	for name, want := range shared.Expected {
		if got[name] != want {
			t.Errorf("%s: ingest would count %+v, report says %+v", name, got[name], want)
		}
	}
	if len(got) != len(shared.Expected) {
		t.Errorf("reconciled %d files, report has %d", len(got), len(shared.Expected))
	}
}

type status int

const (
	accepted status = iota
	quarantined
	optedOut
	outside
)

func (o *status) add(out *synth.Outcome) {
	out.Records++
	switch *o {
	case quarantined:
		out.Quarantined++
	case optedOut:
		out.OptedOut++
	case outside:
		out.OutsidePeriod++
	}
}

// reconcile is a minimal ingest: it classifies every record of dir by the rules of
// synth.Outcome.
func reconcile(t *testing.T, dir string, from, to time.Time) map[string]synth.Outcome {
	t.Helper()
	out := map[string]synth.Outcome{}
	opt := map[string]bool{}
	eachLine(t, filepath.Join(dir, "optout.txt"), func(line []byte) {
		id, err := pseudonymize.ParseIdentifier(string(line))
		if err != nil {
			t.Fatalf("optout.txt has an invalid identifier: %v", err)
		}
		opt[id.Canonical] = true
	})
	person := func(raw string) status {
		id, err := pseudonymize.ParseIdentifier(raw)
		switch {
		case err != nil:
			return quarantined
		case opt[id.Canonical]:
			return optedOut
		}
		return accepted
	}
	dated := func(st status, raw string) status {
		if st != accepted {
			return st
		}
		d, ok := parseDate(raw)
		switch {
		case !ok:
			return quarantined
		case d.Before(from) || d.After(to):
			return outside
		}
		return accepted
	}

	patients := map[string]status{}
	eachLine(t, filepath.Join(dir, "fhir/ndjson/Patient.ndjson"), func(line []byte) {
		var p patientJSON
		st := quarantined
		if json.Unmarshal(line, &p) == nil {
			st = person(p.cf())
			patients[p.ID] = st
		}
		o := out["fhir/ndjson/Patient.ndjson"]
		st.add(&o)
		out["fhir/ndjson/Patient.ndjson"] = o
	})
	for _, typ := range []string{"Encounter", "Condition", "Observation", "MedicationRequest", "Immunization", "ServiceRequest", "DocumentReference"} {
		name := "fhir/ndjson/" + typ + ".ndjson"
		o := synth.Outcome{}
		eachLine(t, filepath.Join(dir, name), func(line []byte) {
			st := quarantined
			var r resource
			if json.Unmarshal(line, &r) == nil && r.ResourceType == typ {
				st = quarantined
				if ps, ok := patients[strings.TrimPrefix(r.patientRef(), "Patient/")]; ok {
					st = dated(ps, r.mainDate())
				}
			}
			st.add(&o)
		})
		out[name] = o
	}

	f, err := os.Open(filepath.Join(dir, "cup/bookings.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var bo synth.Outcome
	for _, row := range rows[1:] {
		st := classifyBooking(row, person, dated)
		st.add(&bo)
	}
	out["cup/bookings.csv"] = bo

	bundles, _ := filepath.Glob(filepath.Join(dir, "fhir/bundles/*.json"))
	for _, path := range bundles {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct {
			Entry []struct {
				FullURL  string          `json:"fullUrl"`
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(b, &bundle); err != nil {
			t.Fatal(err)
		}
		st := map[string]status{}
		for _, e := range bundle.Entry {
			var p patientJSON
			var r resource
			if json.Unmarshal(e.Resource, &r) == nil && r.ResourceType == "Patient" && json.Unmarshal(e.Resource, &p) == nil {
				st[e.FullURL] = person(p.cf())
				if ndjson, ok := patients[p.ID]; !ok || ndjson != st[e.FullURL] {
					t.Errorf("%s: its Patient is not the one in Patient.ndjson", path)
				}
			}
		}
		var o synth.Outcome
		for _, e := range bundle.Entry {
			var r resource
			s := quarantined
			if json.Unmarshal(e.Resource, &r) == nil {
				if r.ResourceType == "Patient" {
					s = st[e.FullURL]
				} else if ps, ok := st[r.patientRef()]; ok {
					s = dated(ps, r.mainDate())
				}
			}
			s.add(&o)
		}
		rel, _ := filepath.Rel(dir, path)
		out[filepath.ToSlash(rel)] = o
	}
	return out
}

func classifyBooking(row []string, person func(string) status, dated func(status, string) status) status {
	if len(row) != 17 {
		return quarantined
	}
	for _, i := range []int{6, 7, 8, 9, 10} {
		if _, ok := parseDate(row[i]); !ok && (row[i] != "" || i != 10) {
			return quarantined
		}
	}
	if _, ok := fse.ServiceByCode(row[3]); !ok {
		return quarantined
	}
	if row[4] != "" {
		if _, ok := fse.MaxWaitDays(fse.Priority(row[4]), fse.Visit); !ok {
			return quarantined
		}
	}
	return dated(person(row[2]), row[7])
}

type resource struct {
	ResourceType string `json:"resourceType"`
	Subject      *struct {
		Reference string `json:"reference"`
	} `json:"subject"`
	Patient *struct {
		Reference string `json:"reference"`
	} `json:"patient"`
	Period *struct {
		Start string `json:"start"`
	} `json:"period"`
	OnsetDateTime      string `json:"onsetDateTime"`
	RecordedDate       string `json:"recordedDate"`
	EffectiveDateTime  string `json:"effectiveDateTime"`
	AuthoredOn         string `json:"authoredOn"`
	OccurrenceDateTime string `json:"occurrenceDateTime"`
	Date               string `json:"date"`
}

func (r *resource) patientRef() string {
	switch {
	case r.Subject != nil:
		return r.Subject.Reference
	case r.Patient != nil:
		return r.Patient.Reference
	}
	return ""
}

func (r *resource) mainDate() string {
	switch r.ResourceType {
	case "Encounter":
		if r.Period != nil {
			return r.Period.Start
		}
	case "Condition":
		if r.OnsetDateTime != "" {
			return r.OnsetDateTime
		}
		return r.RecordedDate
	case "Observation":
		return r.EffectiveDateTime
	case "MedicationRequest", "ServiceRequest":
		return r.AuthoredOn
	case "Immunization":
		return r.OccurrenceDateTime
	case "DocumentReference", "Composition":
		return r.Date
	}
	return ""
}

// parseDate accepts a FHIR date or dateTime and returns its calendar day as written.
func parseDate(s string) (time.Time, bool) {
	if len(s) > 10 {
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return time.Time{}, false
		}
	}
	if len(s) < 10 {
		return time.Time{}, false
	}
	d, err := time.Parse(time.DateOnly, s[:10])
	return d, err == nil
}

// Identifiers must never be derivable from resource ids.
func TestIDsAreNotCodes(t *testing.T) {
	eachLine(t, filepath.Join(sharedDir, "fhir/ndjson/Patient.ndjson"), func(line []byte) {
		var p patientJSON
		if err := json.Unmarshal(line, &p); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToUpper(p.ID), p.cf()) || len(p.ID) != 36 {
			t.Fatalf("Patient id %q is not a UUID independent of the code", p.ID)
		}
	})
}
