package plugin

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/gtime"
	"github.com/grafana/grafana-plugin-sdk-go/data/sqlutil"
)

// A time unit the macros bucket and round to. Velo enumerates date_trunc buckets of these
// units from the extract's period, so they are public group keys.
type unit int

const (
	day unit = iota
	week
	month
	quarter
	year
)

var unitNames = [...]string{"day", "week", "month", "quarter", "year"}

func (u unit) String() string { return unitNames[u] }

// approx is a unit's longest length, used to map a Grafana interval to the smallest unit
// that is at least as long.
func (u unit) approx() time.Duration {
	return [...]time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 31 * 24 * time.Hour, 92 * 24 * time.Hour, 366 * 24 * time.Hour}[u]
}

// trunc is the start of t's bucket (weeks start on Monday, as DuckDB's date_trunc).
func (u unit) trunc(t time.Time) time.Time {
	y, m, d := t.Date()
	switch u {
	case week:
		d -= (int(t.Weekday()) + 6) % 7
	case month:
		d = 1
	case quarter:
		m, d = m-(m-1)%3, 1
	case year:
		m, d = time.January, 1
	}
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// next is the start of the bucket after the one starting at t.
func (u unit) next(t time.Time) time.Time {
	switch u {
	case week:
		return t.AddDate(0, 0, 7)
	case month:
		return t.AddDate(0, 1, 0)
	case quarter:
		return t.AddDate(0, 3, 0)
	case year:
		return t.AddDate(1, 0, 0)
	}
	return t.AddDate(0, 0, 1)
}

// parseUnit reads a $__timeGroup interval: a unit name (day, week, month, quarter, year),
// a Grafana interval (1d, 1w, 1M, 3M, 1y, or any other length, rounded up to the next
// unit), or $__interval / auto (the panel's interval, rounded up likewise; at least a day).
func parseUnit(s string, panel time.Duration) (unit, error) {
	s = strings.Trim(strings.TrimSpace(s), `'"`)
	for u, name := range unitNames {
		if strings.EqualFold(s, name) {
			return unit(u), nil
		}
	}
	var d time.Duration
	switch s {
	case "$__interval", "auto", "":
		d = panel
	case "1M":
		return month, nil
	case "3M", "1Q", "1q":
		return quarter, nil
	case "1y", "12M":
		return year, nil
	default:
		var err error
		if d, err = gtime.ParseInterval(s); err != nil {
			return day, fmt.Errorf("$__timeGroup: %q is not an interval: use day, week, month, quarter or year (or 1d, 1w, 1M, 3M, 1y)", s)
		}
	}
	for u := day; u < year; u++ {
		if d <= u.approx() {
			return u, nil
		}
	}
	return year, nil
}

// Expansion is a panel query with its macros expanded, and the calendar range the query
// covers after rounding.
type Expansion struct {
	SQL      string
	From, To time.Time // [From, To): whole buckets of Unit, midnight in the data source's time zone
	Unit     string
}

// ExpandMacros expands Velo's time macros in sql for a panel's time range and interval:
//
//   - $__timeFilter(col) → col BETWEEN DATE 'first day' AND DATE 'last day'
//   - $__timeGroup(col, interval) → date_trunc('unit', col)
//   - $__timeFrom(), $__timeTo() → DATE 'first day', DATE 'last day'
//
// The range is turned into calendar dates in loc and rounded out to whole days, or to
// whole buckets of the coarsest $__timeGroup unit in the query, so that every refresh
// within a period sends the same text (Velo's release cache answers it for free), the
// first and last buckets are complete, and the filter is a public, coarse range Velo can
// use to narrow a date key's domain. Other Grafana SQL macros are refused: they make no
// sense for DP queries.
func ExpandMacros(sql string, tr backend.TimeRange, interval time.Duration, loc *time.Location) (Expansion, error) {
	if loc == nil {
		loc = time.UTC
	}
	if !tr.To.After(tr.From) {
		return Expansion{}, errors.New("the time range is empty")
	}
	// First pass: the coarsest $__timeGroup unit decides the rounding.
	round := day
	collect := sqlutil.Macros{"timeGroup": func(_ *sqlutil.Query, args []string) (string, error) {
		if len(args) != 2 {
			return "", fmt.Errorf("$__timeGroup takes a date column and an interval, as $__timeGroup(d_contact, 1M); got %d arguments", len(args))
		}
		u, err := parseUnit(args[1], interval)
		if err != nil {
			return "", err
		}
		round = max(round, u)
		return "", nil
	}}
	if _, err := sqlutil.Interpolate(&sqlutil.Query{RawSQL: sql}, withRefusals(collect)); err != nil {
		return Expansion{}, err
	}
	from := round.trunc(tr.From.In(loc))
	to := round.trunc(tr.To.In(loc))
	if to.Before(tr.To.In(loc)) {
		to = round.next(to)
	}
	last := to.AddDate(0, 0, -1)
	macros := sqlutil.Macros{
		"timeFilter": func(_ *sqlutil.Query, args []string) (string, error) {
			if len(args) != 1 || args[0] == "" {
				return "", errors.New("$__timeFilter takes one date column, as $__timeFilter(d_contact)")
			}
			return fmt.Sprintf("%s BETWEEN %s AND %s", args[0], dateLit(from), dateLit(last)), nil
		},
		"timeGroup": func(_ *sqlutil.Query, args []string) (string, error) {
			u, _ := parseUnit(args[1], interval) // checked in the first pass
			return fmt.Sprintf("date_trunc('%s', %s)", u, args[0]), nil
		},
		"timeFrom": func(_ *sqlutil.Query, args []string) (string, error) { return dateLit(from), noArgs("timeFrom", args) },
		"timeTo":   func(_ *sqlutil.Query, args []string) (string, error) { return dateLit(last), noArgs("timeTo", args) },
	}
	out, err := sqlutil.Interpolate(&sqlutil.Query{RawSQL: sql}, withRefusals(macros))
	if err != nil {
		return Expansion{}, err
	}
	if m := leftover.FindString(out); m != "" {
		return Expansion{}, fmt.Errorf("%s is not a Velo macro: use $__timeFilter(col), $__timeGroup(col, 1M), $__timeFrom() or $__timeTo()", m)
	}
	return Expansion{SQL: out, From: from, To: to, Unit: round.String()}, nil
}

// leftover is a macro-shaped name nothing expanded (Grafana's $__timeGroupAlias, a
// misspelling): refused here rather than sent to Velo as a syntax error.
var leftover = regexp.MustCompile(`\$__\w+`)

// withRefusals completes a set of macros: Velo's own that the set leaves out expand to
// nothing (the first pass only collects), and the SDK's other defaults are refused with
// their name instead of being sent with a meaningless expansion.
func withRefusals(m sqlutil.Macros) sqlutil.Macros {
	for _, name := range []string{"interval", "interval_ms", "table", "column", "timeFilter", "timeFrom", "timeTo", "timeGroup"} {
		if _, ok := m[name]; !ok {
			m[name] = func(*sqlutil.Query, []string) (string, error) { return "", nil }
		}
	}
	for _, name := range []string{"interval", "interval_ms", "table", "column"} {
		m[name] = func(*sqlutil.Query, []string) (string, error) {
			return "", fmt.Errorf("$__%s is not supported by Velo: use $__timeGroup(col, $__interval) for time buckets", name)
		}
	}
	return m
}

func noArgs(name string, args []string) error {
	if len(args) > 1 || (len(args) == 1 && args[0] != "") {
		return fmt.Errorf("$__%s takes no arguments", name)
	}
	return nil
}

func dateLit(t time.Time) string { return "DATE '" + t.Format(time.DateOnly) + "'" }
