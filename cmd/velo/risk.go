package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/pseudonymize"
)

// riskOutput is what `velo risk --format json` prints: the report, and what it was
// computed over.
type riskOutput struct {
	DatasetVersion   string   `json:"dataset_version"`
	Table            string   `json:"table"`
	QuasiIdentifiers []string `json:"quasi_identifiers"`
	pseudonymize.RiskReport
}

func runRisk(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("risk", `risk --data DATA [--k 5] [--qi `+strings.Join(ingest.DefaultQuasiIdentifiers, ",")+`] [--format text|json]

Reports the re-identification risk of the person table in DATA: the sizes of the
equivalence classes (people sharing one combination of quasi-identifier values), the
share of people in classes smaller than k, the highest and average prosecutor risk, and
the sample uniques. Prosecutor risk is the chance that an attacker who knows their
target is in the dataset, and knows the target's quasi-identifiers, picks the target's
record: 1 over the size of the target's class.`)
	data := fs.String("data", "", "data directory written by velo ingest (DATA)")
	k := fs.Int("k", 5, "smallest acceptable class size: people in smaller classes have a prosecutor risk above 1/k")
	qiFlag := fs.String("qi", strings.Join(ingest.DefaultQuasiIdentifiers, ","), "comma-separated quasi-identifier columns of the person table")
	format := fs.String("format", "text", "output format: text or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *data == "":
		return usageError{errors.New("risk: --data is required")}
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("risk: unexpected argument %q", fs.Arg(0))}
	case *k < 1:
		return usageError{fmt.Errorf("risk: --k must be 1 or more, not %d", *k)}
	case *format != "text" && *format != "json":
		return usageError{fmt.Errorf("risk: --format must be text or json, not %q", *format)}
	}
	var qis []string
	for _, q := range strings.Split(*qiFlag, ",") {
		if q = strings.TrimSpace(q); q != "" {
			qis = append(qis, q)
		}
	}
	if err := ingest.CheckQuasiIdentifiers(qis); err != nil {
		return usageError{fmt.Errorf("risk: --qi: %w", err)}
	}

	man, err := dataset.ReadManifest(*data)
	if err != nil {
		return fmt.Errorf("risk: no dataset in %s: %w", *data, err)
	}
	hist, err := ingest.ClassSizes(ctx, *data, qis)
	if err != nil {
		return fmt.Errorf("risk: %w", err)
	}
	out := riskOutput{DatasetVersion: man.DatasetVersion, Table: "person", QuasiIdentifiers: qis, RiskReport: pseudonymize.Risk(hist, *k)}
	if *format == "json" {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	printRisk(m.Stdout, out)
	return nil
}

func printRisk(w io.Writer, o riskOutput) {
	r := o.RiskReport
	fmt.Fprintf(w, "Re-identification risk (prosecutor model) of table %s, dataset version %s\n", o.Table, o.DatasetVersion)
	fmt.Fprintf(w, "quasi-identifiers: %s\n\n", strings.Join(o.QuasiIdentifiers, ", "))

	fmt.Fprintf(w, "%-10s %12s %12s %9s\n", "class size", "classes", "records", "records%")
	for _, b := range r.Histogram {
		fmt.Fprintf(w, "%-10s %12d %12d %9s\n", b.Label, b.Classes, b.Records, percent(b.Records, r.Records))
	}
	fmt.Fprintf(w, "%-10s %12d %12d %9s\n\n", "total", r.Classes, r.Records, percent(r.Records, r.Records))

	fmt.Fprintf(w, "%-36s %12d\n", "records", r.Records)
	fmt.Fprintf(w, "%-36s %12d\n", "equivalence classes", r.Classes)
	fmt.Fprintf(w, "%-36s %12d\n", "smallest class", r.MinClassSize)
	fmt.Fprintf(w, "%-36s %12s  (1/smallest class)\n", "highest prosecutor risk", fraction(r.HighestProsecutorRisk))
	fmt.Fprintf(w, "%-36s %12s  (classes/records)\n", "average prosecutor risk", fraction(r.AverageProsecutorRisk))
	fmt.Fprintf(w, "%-36s %12d  %s of records\n", "sample uniques (classes of 1)", r.SampleUniques, percent(r.SampleUniques, r.Records))
	fmt.Fprintf(w, "%-36s %12d  %s of records, in %d classes\n\n", fmt.Sprintf("records in classes smaller than k=%d", r.K), r.RecordsBelowK, percent(r.RecordsBelowK, r.Records), r.ClassesBelowK)

	switch {
	case r.Records == 0:
		fmt.Fprintln(w, "verdict: the person table is empty; there is no one to re-identify.")
	case r.RecordsBelowK == 0:
		fmt.Fprintf(w, "verdict: no record is in a class smaller than k=%d: every prosecutor risk is at most 1/%d.\n", r.K, r.K)
	default:
		fmt.Fprintf(w, "verdict: %s of records are in classes smaller than k=%d (prosecutor risk above 1/%d).\n", percent(r.RecordsBelowK, r.Records), r.K, r.K)
	}
}

// percent renders n/of as a percentage with one decimal; a share that rounding would
// show as 0.0% or 100.0% is shown as "<0.1%" or ">99.9%", so neither reassures falsely.
func percent(n, of int64) string {
	if of == 0 {
		return "-"
	}
	return fraction(float64(n) / float64(of))
}

func fraction(f float64) string {
	switch {
	case f > 0 && f < 0.0005:
		return "<0.1%"
	case f < 1 && f >= 0.9995:
		return ">99.9%"
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}
