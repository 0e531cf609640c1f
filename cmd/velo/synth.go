package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/synth"
)

const synthSynopsis = "synth --persons N --seed S [--bundles M] [--period 2024-01..2025-12] [--format fhir,csv,cda] --out DIR"

func runSynth(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("synth", synthSynopsis+
		"\n\nWrites a deterministic synthetic FSE + CUP extract of fake people: FHIR R4 NDJSON,\n"+
		"optional transaction Bundles, CUP bookings CSV, optionally HL7 CDA R2 documents of the\n"+
		"same people (zip archives under DIR/cda/), an opt-out list, and synth.json with the\n"+
		"counts ingest must reproduce. The same flags always give the same bytes.")
	persons := fs.Int("persons", 1000, "number of people (at most 10,000,000)")
	seed := fs.Uint64("seed", 1, "generator seed")
	bundles := fs.Int("bundles", 0, "write a FHIR transaction Bundle for each of the first `M` people")
	period := fs.String("period", "2024-01..2025-12", "extract period `FROM..TO`, each YYYY-MM or YYYY-MM-DD")
	out := fs.String("out", "", "output `DIR`, created; must not exist or be empty (required)")
	format := fs.String("format", "fhir,csv", "what to write: a comma-separated `LIST` of fhir, csv, cda (CDA R2 documents of the same people)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("synth: unexpected argument %q", fs.Arg(0))}
	case *out == "":
		return usageError{errors.New("synth: --out is required")}
	case *persons < 1 || *persons > synth.MaxPersons:
		return usageError{fmt.Errorf("synth: --persons must be between 1 and %d", synth.MaxPersons)}
	case *bundles < 0 || *bundles > *persons:
		return usageError{errors.New("synth: --bundles must be between 0 and --persons")}
	}
	per, err := fse.ParsePeriod(*period)
	if err != nil {
		return usageError{fmt.Errorf("synth: --period: %w", err)}
	}
	formats, err := synth.ParseFormats(*format)
	if err != nil {
		return usageError{fmt.Errorf("synth: --format: %w", err)}
	}
	if *bundles > 0 && !slices.Contains(formats, synth.FormatFHIR) {
		return usageError{errors.New("synth: --bundles writes FHIR Bundles: it needs fhir in --format")}
	}

	update, done := m.progress("synth", int64(*persons))
	rep, err := synth.Generate(ctx, synth.Config{
		Persons: *persons, Seed: *seed, Bundles: *bundles, Out: *out, Formats: formats,
		From: per.From, To: per.To, OnProgress: update,
	})
	done()
	if err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, synthSummary(rep, *out))
	return nil
}

// synthSummary is one paragraph of counts; it never shows an identifier.
func synthSummary(rep synth.Report, out string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "synth: wrote %d people (seed %d, period %s..%s) to %s:", rep.Persons, rep.Seed, rep.Period.From, rep.Period.To, out)
	if slices.Contains(rep.Formats, synth.FormatFHIR) {
		for _, t := range []string{"Patient", "Encounter", "Condition", "Observation", "MedicationRequest", "Immunization", "ServiceRequest", "DocumentReference"} {
			fmt.Fprintf(&b, " %d %s,", rep.Files["fhir/ndjson/"+t+".ndjson"].Records, t)
		}
	}
	if slices.Contains(rep.Formats, synth.FormatCSV) {
		fmt.Fprintf(&b, " %d bookings in cup/bookings.csv,", rep.Files["cup/bookings.csv"].Records)
	}
	if slices.Contains(rep.Formats, synth.FormatFHIR) {
		fmt.Fprintf(&b, " %d transaction bundles,", rep.Bundles)
	}
	if slices.Contains(rep.Formats, synth.FormatCDA) {
		fmt.Fprintf(&b, " %d CDA documents under cda/,", rep.CDADocuments)
	}
	fmt.Fprintf(&b, " %d people in optout.txt.", rep.OptedOut)
	var total synth.Outcome
	var bytes int64
	for name, o := range rep.Expected {
		total.Records += o.Records
		total.Quarantined += o.Quarantined
		total.OptedOut += o.OptedOut
		total.OutsidePeriod += o.OutsidePeriod
		bytes += rep.Files[name].Bytes
	}
	fmt.Fprintf(&b, " Of %d records (%.1f MB), ingest should quarantine %d, drop %d as opted out and %d as outside the period;",
		total.Records, float64(bytes)/1e6, total.Quarantined, total.OptedOut, total.OutsidePeriod)
	fmt.Fprintf(&b, " %s/synth.json has the counts per file.", strings.TrimRight(out, "/"))
	return b.String()
}
