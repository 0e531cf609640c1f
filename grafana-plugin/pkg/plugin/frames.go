package plugin

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/release"
)

// Output formats of a panel query.
const (
	formatTable      = "table"
	formatTimeSeries = "time_series"
)

// ciSuffixes name the confidence-interval fields beside each DP column, as in Velo's
// CSV and Arrow answers.
const (
	ciLower = "_ci_lower"
	ciUpper = "_ci_upper"
)

// releaseFrame turns a release into one frame: a table (key and DP columns in order, each
// DP column followed by its interval bounds), or a wide time series when the release is
// keyed by a date bucket (other keys become labels).
func releaseFrame(rel *release.Release, refID, format, executed string) (*data.Frame, error) {
	long, timeCol, err := longFrame(rel, refID, format == formatTimeSeries)
	if err != nil {
		return nil, err
	}
	long.Meta = releaseMeta(rel, executed)
	if format != formatTimeSeries {
		long.Meta.Type = data.FrameTypeTable
		return long, nil
	}
	if timeCol < 0 {
		return nil, fmt.Errorf("the time series format needs a date key: group by $__timeGroup(col, 1M) (or choose the table format)")
	}
	if len(rel.Rows) == 0 || len(rel.Columns) == countKind(rel, "dp")+1 {
		long.Meta.Type = data.FrameTypeTimeSeriesWide
		return long, nil
	}
	wide, err := data.LongToWide(long, nil)
	if err != nil {
		return nil, fmt.Errorf("turning the release into a time series: %w", err)
	}
	wide.Name, wide.RefID = long.Name, refID
	wide.Meta.Type = data.FrameTypeTimeSeriesWide
	return wide, nil
}

// longFrame builds the frame with one row per release row. For a time series the rows are
// sorted by the first date key (which becomes a non-null time field, rows without a date
// dropped) and the other keys become strings (labels after LongToWide).
func longFrame(rel *release.Release, refID string, series bool) (*data.Frame, int, error) {
	timeCol := -1
	if series {
		for i, c := range rel.Columns {
			if c.Kind == "key" && isTimeType(c.Type) {
				timeCol = i
				break
			}
		}
	}
	rows := make([]int, 0, len(rel.Rows))
	for i := range rel.Rows {
		if len(rel.Rows[i]) != len(rel.Columns) {
			return nil, -1, fmt.Errorf("release %s: row %d has %d cells for %d columns", rel.ReleaseID, i, len(rel.Rows[i]), len(rel.Columns))
		}
		if timeCol >= 0 && rel.Rows[i][timeCol] == nil {
			continue
		}
		rows = append(rows, i)
	}
	times := make([]time.Time, len(rel.Rows))
	if timeCol >= 0 {
		for _, i := range rows {
			t, err := parseTime(rel.Rows[i][timeCol])
			if err != nil {
				return nil, -1, fmt.Errorf("release %s: column %s: %w", rel.ReleaseID, rel.Columns[timeCol].Name, err)
			}
			times[i] = t
		}
		slices.SortStableFunc(rows, func(a, b int) int { return times[a].Compare(times[b]) })
	}

	frame := data.NewFrame(refID)
	frame.RefID = refID
	for c, col := range rel.Columns {
		switch {
		case c == timeCol:
			vals := make([]time.Time, len(rows))
			for j, i := range rows {
				vals[j] = times[i]
			}
			frame.Fields = append(frame.Fields, data.NewField(col.Name, nil, vals))
		case col.Kind == "dp":
			v, lo, hi := make([]*float64, len(rows)), make([]*float64, len(rows)), make([]*float64, len(rows))
			for j, i := range rows {
				var err error
				if v[j], err = toFloat(rel.Rows[i][c]); err != nil {
					return nil, -1, fmt.Errorf("release %s: column %s: %w", rel.ReleaseID, col.Name, err)
				}
				if lo[j], hi[j], err = interval(rel, i, c); err != nil {
					return nil, -1, err
				}
			}
			f := data.NewField(col.Name, nil, v)
			f.Config = &data.FieldConfig{Description: dpDescription(col, rel.Confidence)}
			frame.Fields = append(frame.Fields, f, data.NewField(col.Name+ciLower, nil, lo), data.NewField(col.Name+ciUpper, nil, hi))
		default:
			f, err := keyField(rel, col, c, rows, series)
			if err != nil {
				return nil, -1, err
			}
			if len(col.Labels) > 0 {
				// Codes stay the values (for variables and links); the table shows them
				// with their public names.
				m := data.ValueMapper{}
				for code, name := range col.Labels {
					m[code] = data.ValueMappingResult{Text: code + " " + name}
				}
				f.Config = &data.FieldConfig{Mappings: data.ValueMappings{m}}
			}
			frame.Fields = append(frame.Fields, f)
		}
	}
	return frame, timeCol, nil
}

// keyField is a group-key column as a nullable field of its type (strings in a time
// series, where keys are labels).
func keyField(rel *release.Release, col release.Column, c int, rows []int, series bool) (*data.Field, error) {
	fail := func(i int, err error) (*data.Field, error) {
		return nil, fmt.Errorf("release %s: column %s, row %d: %w", rel.ReleaseID, col.Name, i, err)
	}
	typ := strings.ToUpper(col.Type)
	switch {
	case series || typ == "VARCHAR" || typ == "":
		vals := make([]*string, len(rows))
		for j, i := range rows {
			if v := rel.Rows[i][c]; v != nil {
				s := fmt.Sprint(v)
				vals[j] = &s
			}
		}
		return data.NewField(col.Name, nil, vals), nil
	case isTimeType(typ):
		vals := make([]*time.Time, len(rows))
		for j, i := range rows {
			if v := rel.Rows[i][c]; v != nil {
				t, err := parseTime(v)
				if err != nil {
					return fail(i, err)
				}
				vals[j] = &t
			}
		}
		return data.NewField(col.Name, nil, vals), nil
	case typ == "BOOLEAN":
		vals := make([]*bool, len(rows))
		for j, i := range rows {
			if v := rel.Rows[i][c]; v != nil {
				b, ok := v.(bool)
				if !ok {
					return fail(i, fmt.Errorf("%v is not a boolean", v))
				}
				vals[j] = &b
			}
		}
		return data.NewField(col.Name, nil, vals), nil
	case isIntegerType(typ):
		vals := make([]*int64, len(rows))
		for j, i := range rows {
			if v := rel.Rows[i][c]; v != nil {
				n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64)
				if err != nil {
					return fail(i, err)
				}
				vals[j] = &n
			}
		}
		return data.NewField(col.Name, nil, vals), nil
	}
	vals := make([]*float64, len(rows))
	for j, i := range rows {
		f, err := toFloat(rel.Rows[i][c])
		if err != nil {
			return fail(i, err)
		}
		vals[j] = f
	}
	return data.NewField(col.Name, nil, vals), nil
}

// interval is the confidence interval of cell (i, c), nil bounds where Velo has no sound
// one.
func interval(rel *release.Release, i, c int) (lo, hi *float64, err error) {
	if i >= len(rel.CI) || c >= len(rel.CI[i]) || rel.CI[i][c] == nil {
		return nil, nil, nil
	}
	b, ok := rel.CI[i][c].([]any)
	if !ok || len(b) != 2 {
		return nil, nil, fmt.Errorf("release %s: row %d: confidence interval of %s is not a pair", rel.ReleaseID, i, rel.Columns[c].Name)
	}
	if lo, err = toFloat(b[0]); err != nil {
		return nil, nil, err
	}
	hi, err = toFloat(b[1])
	return lo, hi, err
}

func releaseMeta(rel *release.Release, executed string) *data.FrameMeta {
	custom := map[string]any{
		"releaseId": rel.ReleaseID, "project": rel.Project, "datasetVersion": rel.DatasetVersion,
		"cached": rel.Cached, "epsilon": rel.Epsilon, "delta": rel.Delta, "confidence": rel.Confidence,
		"budgetLeft": map[string]float64{"epsilon": rel.BudgetLeft.Epsilon, "delta": rel.BudgetLeft.Delta},
	}
	m := &data.FrameMeta{ExecutedQueryString: executed, Custom: custom}
	left := fmt.Sprintf("ε left %s, δ left %s", fmtNum(rel.BudgetLeft.Epsilon), fmtNum(rel.BudgetLeft.Delta))
	switch {
	case rel.Dummy:
		custom["dummy"] = true
		price := ""
		if rel.Price != nil {
			custom["price"] = map[string]float64{"epsilon": rel.Price.Epsilon, "delta": rel.Price.Delta}
			price = fmt.Sprintf("; on the data it costs ε %s, δ %s", fmtNum(rel.Price.Epsilon), fmtNum(rel.Price.Delta))
		}
		m.Notices = []data.Notice{{Severity: data.NoticeSeverityWarning, Text: fmt.Sprintf("Dummy data: exact answers about made-up people generated from the catalog, not the real ones; nothing spent%s (%s in project %s).", price, left, rel.Project)}}
	case rel.Cached:
		m.Notices = []data.Notice{{Severity: data.NoticeSeverityInfo, Text: fmt.Sprintf("Velo release %s from the release cache: no privacy budget spent (%s in project %s).", rel.ReleaseID, left, rel.Project)}}
	default:
		m.Notices = []data.Notice{{Severity: data.NoticeSeverityInfo, Text: fmt.Sprintf("Velo release %s charged ε %s, δ %s to project %s (%s).", rel.ReleaseID, fmtNum(rel.Epsilon), fmtNum(rel.Delta), rel.Project, left)}}
	}
	// Velo's notes (values outside their range or clamped, intervals that say nothing,
	// groups partition selection left out) are caveats on the numbers shown.
	for _, n := range rel.Notes {
		m.Notices = append(m.Notices, data.Notice{Severity: data.NoticeSeverityWarning, Text: n})
	}
	return m
}

func dpDescription(col release.Column, confidence float64) string {
	agg := col.Aggregate
	if agg == "" {
		agg = "aggregate"
	}
	return fmt.Sprintf("Differentially private %s; %s%% confidence interval in %s%s and %s%s.", agg, fmtNum(confidence*100), col.Name, ciLower, col.Name, ciUpper)
}

// budgetFrame is a project's privacy budget as a one-row table.
func budgetFrame(p *projectStatus, refID string) *data.Frame {
	f := data.NewFrame(refID,
		data.NewField("project", nil, []string{p.ID}),
		data.NewField("epsilon_total", nil, []float64{p.Total.Epsilon}),
		data.NewField("epsilon_spent", nil, []float64{p.Spent.Epsilon}),
		data.NewField("epsilon_left", nil, []float64{p.Left.Epsilon}),
		data.NewField("delta_total", nil, []float64{p.Total.Delta}),
		data.NewField("delta_spent", nil, []float64{p.Spent.Delta}),
		data.NewField("delta_left", nil, []float64{p.Left.Delta}),
		data.NewField("queries", nil, []int64{int64(p.Queries)}),
	)
	f.RefID = refID
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTable}
	return f
}

func countKind(rel *release.Release, kind string) int {
	n := 0
	for _, c := range rel.Columns {
		if c.Kind == kind {
			n++
		}
	}
	return n
}

func isTimeType(t string) bool {
	t = strings.ToUpper(t)
	return t == "DATE" || strings.HasPrefix(t, "TIMESTAMP")
}

func isIntegerType(t string) bool {
	switch t {
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT":
		return true
	}
	return false
}

// parseTime reads a date or timestamp cell: "2024-03-01" or RFC 3339.
func parseTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("%v is not a date", v)
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date", s)
}

func toFloat(v any) (*float64, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case json.Number:
		f, err := x.Float64()
		return &f, err
	case float64:
		return &x, nil
	case string: // NaN and infinities travel as strings
		f, err := strconv.ParseFloat(x, 64)
		return &f, err
	}
	return nil, fmt.Errorf("%v is not a number", v)
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

// domainFrame is a column's public domain as a dashboard variable's options: __value the
// code, __text its name where Velo's reference data has one. The domain is public (the
// catalog's, from reference data), so reading it costs no budget.
func domainFrame(cat *catalogDoc, table, column, refID string) (*data.Frame, error) {
	if table == "" || column == "" {
		return nil, fmt.Errorf("a domain query names a table and a column, as booking and region")
	}
	name := ""
	found := false
	for _, t := range cat.Tables {
		if t.Name != table {
			continue
		}
		for _, c := range t.Columns {
			if c.Name == column {
				name, found = c.Domain, true
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("%s.%s is not a column the project may read", table, column)
	}
	dom, ok := cat.Domains[name]
	if name == "" || !ok {
		return nil, fmt.Errorf("%s.%s has no public domain: its values are not public, so they cannot be listed", table, column)
	}
	values, texts := make([]string, len(dom.Values)), make([]string, len(dom.Values))
	for i, v := range dom.Values {
		values[i] = fmt.Sprint(v)
		texts[i] = label(name, values[i])
	}
	f := data.NewFrame(refID, data.NewField("__text", nil, texts), data.NewField("__value", nil, values))
	f.RefID = refID
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTable, Custom: map[string]any{"domain": name, "source": dom.Source}}
	return f, nil
}

// label names a code of a domain from Velo's public reference data, or is the code.
func label(domain, code string) string {
	switch domain {
	case "region":
		if r, ok := fse.RegionByCode(code); ok {
			return r.Name
		}
	case "service_code":
		if s, ok := fse.ServiceByCode(code); ok {
			return code + " " + s.Name
		}
	case "document_type":
		for _, d := range fse.DocumentTypes {
			if d.LOINC == code {
				return d.Name
			}
		}
	}
	return code
}
