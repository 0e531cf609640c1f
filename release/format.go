package release

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteCSV writes the release as CSV: leading "# key: value" lines with the release's
// fields, then a header and one row per group, with <col>_ci_lower and <col>_ci_upper
// beside each dp column (docs/design.md#the-release).
func (r *Release) WriteCSV(w io.Writer) error {
	meta := [][2]string{
		{"release_id", r.ReleaseID}, {"project", r.Project}, {"dataset_version", r.DatasetVersion},
		{"cached", strconv.FormatBool(r.Cached)}, {"epsilon", num(r.Epsilon)}, {"delta", num(r.Delta)},
		{"confidence", num(r.Confidence)},
		{"budget_left_epsilon", num(r.BudgetLeft.Epsilon)}, {"budget_left_delta", num(r.BudgetLeft.Delta)},
	}
	for _, s := range r.BudgetSplit {
		entry := fmt.Sprintf("%s: %s epsilon=%s delta=%s", s.For, s.Mechanism, num(s.Epsilon), num(s.Delta))
		if s.Rho > 0 {
			entry += " rho=" + num(s.Rho)
		}
		meta = append(meta, [2]string{"budget_split", entry})
	}
	if r.Dummy {
		meta = append(meta, [2]string{"dummy", "true (exact answers on made-up data from the catalog, not the real ones)"})
	}
	if r.Price != nil {
		meta = append(meta, [2]string{"price", fmt.Sprintf("epsilon=%s delta=%s", num(r.Price.Epsilon), num(r.Price.Delta))})
	}
	if r.ClampToRange {
		meta = append(meta, [2]string{"clamp_to_range", "true"})
	}
	if s := r.Selection; s != nil {
		meta = append(meta, [2]string{"selection", s.summary()})
	}
	for _, n := range r.Notes {
		meta = append(meta, [2]string{"note", n})
	}
	for _, m := range meta {
		if _, err := fmt.Fprintf(w, "# %s: %s\n", m[0], strings.ReplaceAll(m[1], "\n", " ")); err != nil {
			return err
		}
	}
	cw := csv.NewWriter(w)
	var header []string
	for _, c := range r.Columns {
		header = append(header, c.Name)
		if c.Kind == "dp" {
			header = append(header, c.Name+"_ci_lower", c.Name+"_ci_upper", c.Name+"_flags")
		}
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	for i, row := range r.Rows {
		var rec []string
		for j, c := range r.Columns {
			rec = append(rec, cell(row[j]))
			if c.Kind == "dp" {
				if lo, hi, ok := CIBounds(r.CI[i][j]); ok {
					rec = append(rec, num(lo), num(hi))
				} else {
					rec = append(rec, "", "")
				}
				rec = append(rec, strings.Join(r.FlagsOf(i, j), " "))
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes the release for a terminal: aligned columns, each key code with its
// public name, each dp value with its confidence interval and a mark for its flags (*
// clamped, ? uninformative interval, explained below the table), then the cost, the budget
// left and the release's notes.
func (r *Release) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	var header []string
	for _, c := range r.Columns {
		header = append(header, c.Name)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	marks := map[string]bool{}
	for i, row := range r.Rows {
		var cells []string
		for j, c := range r.Columns {
			s := cell(row[j])
			if c.Kind == "key" {
				if l, ok := c.Labels[s]; ok && row[j] != nil {
					s += " " + l
				}
			}
			if c.Kind == "dp" {
				if f, ok := row[j].(float64); ok {
					s = strconv.FormatFloat(f, 'f', 2, 64)
				}
				flags := r.FlagsOf(i, j)
				if slices.Contains(flags, FlagClamped) { // the mark follows what it marks
					s += flagMarks[FlagClamped]
					marks[FlagClamped] = true
				}
				if lo, hi, ok := CIBounds(r.CI[i][j]); ok {
					s += fmt.Sprintf(" [%.2f, %.2f]", lo, hi)
				}
				if slices.Contains(flags, FlagUninformative) {
					s += flagMarks[FlagUninformative]
					marks[FlagUninformative] = true
				}
			}
			cells = append(cells, s)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range []string{FlagClamped, FlagUninformative} {
		if marks[f] {
			fmt.Fprintf(w, "%s %s\n", flagMarks[f], flagLegend[f])
		}
	}
	status := "charged"
	switch {
	case r.DryRun:
		status = "dry run: would be charged"
	case r.Cached:
		status = "cached release, not charged again"
	}
	// The footer promises intervals only when some value has one, and names a release
	// only when there is one (a dry run has none).
	intervals := ""
	if r.hasIntervals() {
		intervals = fmt.Sprintf(" (%.0f%% confidence intervals)", r.Confidence*100)
	}
	id := ""
	if r.ReleaseID != "" {
		id = "; release " + r.ReleaseID
	}
	if r.Dummy {
		price := ""
		if r.Price != nil {
			price = fmt.Sprintf("; the real run costs epsilon=%s delta=%s", num(r.Price.Epsilon), num(r.Price.Delta))
		}
		if _, err := fmt.Fprintf(w, "\n%d rows; DUMMY DATA: exact answers on made-up people from the catalog, not the real ones; not charged%s; budget left epsilon=%s delta=%s%s\n",
			len(r.Rows), price, num(r.BudgetLeft.Epsilon), num(r.BudgetLeft.Delta), id); err != nil {
			return err
		}
	} else if _, err := fmt.Fprintf(w, "\n%d rows; %s epsilon=%s delta=%s%s; budget left epsilon=%s delta=%s%s\n",
		len(r.Rows), status, num(r.Epsilon), num(r.Delta), intervals, num(r.BudgetLeft.Epsilon), num(r.BudgetLeft.Delta), id); err != nil {
		return err
	}
	for _, c := range r.Columns {
		if c.Accuracy != "" {
			fmt.Fprintf(w, "%s: %s\n", c.Name, c.Accuracy)
		}
	}
	for _, n := range r.Notes {
		if _, err := fmt.Fprintf(w, "note: %s\n", n); err != nil {
			return err
		}
	}
	return nil
}

// flagMarks are the table's marks of flagged values, explained by flagLegend.
var (
	flagMarks  = map[string]string{FlagClamped: "*", FlagUninformative: "?"}
	flagLegend = map[string]string{
		FlagClamped:       "noisy value outside the aggregate's range, clamped to it (clamp_to_range)",
		FlagUninformative: "the interval covers the aggregate's whole range: the value says nothing about this group",
	}
)

// summary is the selection as one line.
func (s *Selection) summary() string {
	out := fmt.Sprintf("%s epsilon=%s delta=%s max_groups_contributed=%d persons_for_even_odds=%d persons_for_95_percent=%d",
		s.Mechanism, num(s.Epsilon), num(s.Delta), s.MaxGroupsContributed, s.PersonsForEvenOdds, s.PersonsFor95Percent)
	if s.GroupsKept != nil {
		out += " groups_kept=" + strconv.Itoa(*s.GroupsKept)
	}
	return out
}

// CIBounds reads a CI cell of a release, as built ([]float64) or decoded from JSON ([]any).
func CIBounds(v any) (lo, hi float64, ok bool) {
	switch ci := v.(type) {
	case []float64:
		if len(ci) == 2 {
			return ci[0], ci[1], true
		}
	case []any:
		if len(ci) == 2 {
			lo, ok1 := Number(ci[0])
			hi, ok2 := Number(ci[1])
			return lo, hi, ok1 && ok2
		}
	}
	return 0, 0, false
}

func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case float64:
		return num(v)
	case string:
		return v
	}
	return fmt.Sprint(v)
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// Number reads a numeric cell as a float64: any Go integer or float type (as database
// drivers return them), a *big.Int (DuckDB's HUGEINT) or a json.Number (JSON decoded with
// UseNumber). ok is false for anything else, nil included.
func Number(v any) (f float64, ok bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case *big.Int:
		if x == nil {
			return 0, false
		}
		f, _ := new(big.Float).SetInt(x).Float64()
		return f, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// hasIntervals reports whether some released value has a confidence interval.
func (r *Release) hasIntervals() bool {
	for _, row := range r.CI {
		for _, ci := range row {
			if ci != nil {
				return true
			}
		}
	}
	return false
}
