package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/velo-fse/velo/bench"
	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/query"
)

// The planted dependency age ↔ diagnoses (synth's prevalence model: each chronic diagnosis
// is absent below an age and grows from its prevalence at 40 to that at 80) spans two
// tables, person and diagnosis. Velo's synthesizer and /v1/marginals read one table, and a
// diagnosis code has no public domain (it cannot be an attribute of a marginal), so the
// dependency is shown through what Velo does support: one DP query over diagnosis joined
// to person on pid, persons by age band × code, with partition selection for the codes.
// Beside it: the same table counted exactly (benchmark-only, non-private), and the
// independence baseline (the product of the real table's age and code margins).

// ageBandSQL is bench.Suite's age band, by birth year.
const ageBandSQL = "CASE WHEN p.birth_year >= 2006 THEN '0-17' WHEN p.birth_year >= 1985 THEN '18-39' WHEN p.birth_year >= 1960 THEN '40-64' ELSE '65+' END"

// trackedCodes are the diagnoses whose conditional shares are printed: the prevalence model's
// steepest in age (hypertension, type II diabetes, osteoarthritis, atrial fibrillation) and
// its flattest (anxiety).
var trackedCodes = []string{"401.9", "250.00", "715.90", "427.31", "300.00"}

func ageDiagMain(args []string) int {
	fl := flag.NewFlagSet("agediag", flag.ExitOnError)
	home, _ := os.UserHomeDir()
	dir := fl.String("dir", filepath.Join(home, ".cache", "velo-bench"), "work directory: datasets are cached here")
	persons := fl.Int("persons", 20000, "synthetic persons (velo synth, every format ingested)")
	eps := fl.Float64("epsilon", 1, "epsilon of the DP query")
	delta := fl.Float64("delta", 1e-6, "delta of the DP query")
	_ = fl.Parse(args)
	if err := ageDiag(context.Background(), os.Stdout, *dir, *persons, *eps, *delta); err != nil {
		fmt.Fprintln(os.Stderr, "synthbench agediag:", err)
		return 1
	}
	return 0
}

type ageCode struct{ age, code string }

func ageDiag(ctx context.Context, w io.Writer, dir string, persons int, eps, delta float64) error {
	data, err := bench.EnsureDataset(ctx, dir, persons, true)
	if err != nil {
		return err
	}
	// Exact: persons by age band × code (non-private, for the comparison only).
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	real := map[ageCode]float64{}
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT %s AS age_band, d.code, count(DISTINCT d.pid)
		FROM read_parquet('%s') d JOIN read_parquet('%s') p ON d.pid = p.pid WHERE d.code IS NOT NULL GROUP BY ALL`,
		ageBandSQL, dataset.TableGlob(data, "diagnosis"), dataset.TableGlob(data, "person")))
	if err != nil {
		return err
	}
	for rows.Next() {
		var k ageCode
		var n float64
		if err := rows.Scan(&k.age, &k.code, &n); err != nil {
			rows.Close()
			return err
		}
		real[k] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	// DP: the same table through the engine, one query, a fresh ledger.
	eng, _, closeAll, err := bench.OpenEngine(ctx, data, "", ledger.Project{
		ID: "agediag", Purpose: "planted dependency benchmark", LegalBasis: "none: synthetic data",
		Allow: map[string][]string{"diagnosis": nil, "person": nil}, EpsilonBudget: 100, DeltaBudget: 1e-3, DefaultEpsilon: 1, DefaultDelta: 1e-6,
	}, query.Limits{Timeout: time.Hour})
	if err != nil {
		return err
	}
	defer closeAll()
	q := fmt.Sprintf("SELECT WITH DIFFERENTIAL_PRIVACY %s AS age_band, d.code, COUNT(DISTINCT d.pid) AS persons FROM diagnosis d JOIN person p ON d.pid = p.pid GROUP BY age_band, d.code", ageBandSQL)
	rel, err := eng.Query(ctx, query.Request{SQL: q, Project: "agediag", Actor: "user:bench", Epsilon: &eps, Delta: &delta})
	if err != nil {
		return err
	}
	noisy := map[ageCode]float64{}
	for _, r := range rel.Rows {
		k := ageCode{fmt.Sprint(r[0]), fmt.Sprint(r[1])}
		v, _ := r[2].(float64)
		if iv, ok := r[2].(int64); ok {
			v = float64(iv)
		}
		noisy[k] = max(v, 0)
	}

	// Independence: the product of the real table's margins.
	var total float64
	byAge, byCode := map[string]float64{}, map[string]float64{}
	for k, v := range real {
		total += v
		byAge[k.age] += v
		byCode[k.code] += v
	}
	indep := map[ageCode]float64{}
	for a, va := range byAge {
		for c, vc := range byCode {
			indep[ageCode{a, c}] = va * vc / total
		}
	}
	tvd := func(x map[ageCode]float64) float64 {
		var sx float64
		for _, v := range x {
			sx += v
		}
		keys := map[ageCode]bool{}
		for k := range real {
			keys[k] = true
		}
		for k := range x {
			keys[k] = true
		}
		var s float64
		for k := range keys {
			d := real[k]/total - x[k]/sx
			if d < 0 {
				d = -d
			}
			s += d
		}
		return s / 2
	}
	ages := []string{"0-17", "18-39", "40-64", "65+"}
	fmt.Fprintf(w, "Dataset %s: %d (age band, code) cells with persons, %.0f person-diagnosis pairs; DP query at epsilon %g, delta %g released %d cells (partition selection).\n\n",
		data, len(real), total, eps, delta, len(noisy))
	fmt.Fprintln(w, "| table of persons by age band × diagnosis code | TVD to the real table |")
	fmt.Fprintln(w, "|---|---:|")
	fmt.Fprintf(w, "| Velo DP query (one charge, epsilon %g) | %.4f |\n", eps, tvd(noisy))
	fmt.Fprintf(w, "| independence baseline (product of the real margins; non-private) | %.4f |\n\n", tvd(indep))
	fmt.Fprint(w, "| code: share of the age band's person-diagnoses | ")
	for _, a := range ages {
		fmt.Fprintf(w, "%s real | %s Velo DP | ", a, a)
	}
	fmt.Fprintln(w, "independence (every band) |")
	fmt.Fprintln(w, "|---|"+strings.Repeat("---:|", 2*len(ages)+1))
	rowSum := func(x map[ageCode]float64, a string) float64 {
		var s float64
		for k, v := range x {
			if k.age == a {
				s += v
			}
		}
		return s
	}
	codes := slices.Clone(trackedCodes)
	for _, c := range codes {
		fmt.Fprintf(w, "| %s | ", c)
		for _, a := range ages {
			share := func(x map[ageCode]float64) float64 {
				if s := rowSum(x, a); s > 0 {
					return x[ageCode{a, c}] / s
				}
				return 0
			}
			fmt.Fprintf(w, "%.3f | %.3f | ", share(real), share(noisy))
		}
		fmt.Fprintf(w, "%.3f |\n", byCode[c]/total)
	}
	return nil
}
