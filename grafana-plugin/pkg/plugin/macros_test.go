package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

func rome(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestExpandMacros(t *testing.T) {
	loc := rome(t)
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	// "Last 30 days" as Grafana sends it at two refreshes an hour apart on 2025-06-17
	// (Rome is UTC+2 in June).
	refresh1 := backend.TimeRange{From: at("2025-05-18T08:03:11Z"), To: at("2025-06-17T08:03:11Z")}
	refresh2 := backend.TimeRange{From: at("2025-05-18T09:04:59Z"), To: at("2025-06-17T09:04:59Z")}
	// 2024-01-01 00:00 in Rome is 2023-12-31 23:00 UTC: still 1 January in Rome.
	wholeYears := backend.TimeRange{From: at("2023-12-31T23:00:00Z"), To: at("2025-12-31T22:59:59Z")}

	cases := []struct {
		name     string
		sql      string
		tr       backend.TimeRange
		interval time.Duration
		want     string
		unit     string
	}{
		{"filter rounds out to whole days", "SELECT COUNT(*) AS n FROM booking WHERE $__timeFilter(d_contact)", refresh1, time.Hour,
			"SELECT COUNT(*) AS n FROM booking WHERE d_contact BETWEEN DATE '2025-05-18' AND DATE '2025-06-17'", "day"},
		{"a refresh later the same day sends the same text", "SELECT COUNT(*) AS n FROM booking WHERE $__timeFilter(d_contact)", refresh2, time.Hour,
			"SELECT COUNT(*) AS n FROM booking WHERE d_contact BETWEEN DATE '2025-05-18' AND DATE '2025-06-17'", "day"},
		{"dates are Rome's calendar days", "SELECT COUNT(*) AS n FROM booking WHERE $__timeFilter(d_contact)", wholeYears, 0,
			"SELECT COUNT(*) AS n FROM booking WHERE d_contact BETWEEN DATE '2024-01-01' AND DATE '2025-12-31'", "day"},
		{"monthly buckets round the range to whole months", "SELECT $__timeGroup(d_contact, 1M) AS month, COUNT(*) AS n FROM booking WHERE $__timeFilter(d_contact) GROUP BY month", refresh1, time.Hour,
			"SELECT date_trunc('month', d_contact) AS month, COUNT(*) AS n FROM booking WHERE d_contact BETWEEN DATE '2025-05-01' AND DATE '2025-06-30' GROUP BY month", "month"},
		{"$__interval maps to the smallest unit at least as long", "SELECT $__timeGroup(d_contact, $__interval) AS w, COUNT(*) AS n FROM booking GROUP BY w", refresh1, 3 * 24 * time.Hour,
			"SELECT date_trunc('week', d_contact) AS w, COUNT(*) AS n FROM booking GROUP BY w", "week"},
		{"sub-day intervals become days", "SELECT $__timeGroup(d_contact, '5m') AS d, COUNT(*) AS n FROM booking GROUP BY d", refresh1, 0,
			"SELECT date_trunc('day', d_contact) AS d, COUNT(*) AS n FROM booking GROUP BY d", "day"},
		{"unit names, quarters and years", "SELECT $__timeGroup(d_contact, quarter) AS q, $__timeGroup(d_delivered, 1y) AS y, COUNT(*) AS n FROM booking WHERE $__timeFilter(d_contact) GROUP BY q, y", refresh1, 0,
			"SELECT date_trunc('quarter', d_contact) AS q, date_trunc('year', d_delivered) AS y, COUNT(*) AS n FROM booking WHERE d_contact BETWEEN DATE '2025-01-01' AND DATE '2025-12-31' GROUP BY q, y", "year"},
		{"from and to", "SELECT COUNT(*) AS n FROM booking WHERE d_contact >= $__timeFrom() AND d_contact <= $__timeTo()", wholeYears, 0,
			"SELECT COUNT(*) AS n FROM booking WHERE d_contact >= DATE '2024-01-01' AND d_contact <= DATE '2025-12-31'", "day"},
		{"weeks start on Monday", "SELECT $__timeGroup(d_contact, 1w) AS w, COUNT(*) AS n FROM booking WHERE $__timeFilter(d_contact) GROUP BY w", refresh1, 0,
			"SELECT date_trunc('week', d_contact) AS w, COUNT(*) AS n FROM booking WHERE d_contact BETWEEN DATE '2025-05-12' AND DATE '2025-06-22' GROUP BY w", "week"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ExpandMacros(c.sql, c.tr, c.interval, loc)
			if err != nil {
				t.Fatal(err)
			}
			if got.SQL != c.want || got.Unit != c.unit {
				t.Errorf("ExpandMacros(%q)\n got %q (%s)\nwant %q (%s)", c.sql, got.SQL, got.Unit, c.want, c.unit)
			}
			if !got.From.Before(got.To) || got.From.After(c.tr.From) || got.To.Before(c.tr.To) {
				t.Errorf("rounded range [%v, %v) does not cover the panel's [%v, %v)", got.From, got.To, c.tr.From, c.tr.To)
			}
		})
	}
}

func TestExpandMacrosErrors(t *testing.T) {
	tr := backend.TimeRange{From: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)}
	cases := []struct{ sql, want string }{
		{"SELECT COUNT(*) AS n FROM booking WHERE $__timeFilter", "$__timeFilter takes one date column"},
		{"SELECT COUNT(*) AS n FROM booking WHERE $__timeFilter(a, b)", "$__timeFilter takes one date column"},
		{"SELECT $__timeGroup(d_contact) AS m, COUNT(*) AS n FROM booking GROUP BY m", "$__timeGroup takes a date column and an interval"},
		{"SELECT $__timeGroup(d_contact, 1M, 0) AS m, COUNT(*) AS n FROM booking GROUP BY m", "got 3 arguments"},
		{"SELECT $__timeGroup(d_contact, fortnight) AS m, COUNT(*) AS n FROM booking GROUP BY m", `"fortnight" is not an interval`},
		{"SELECT COUNT(*) AS n FROM $__table", "$__table is not supported by Velo"},
		{"SELECT COUNT(*) AS n FROM booking WHERE d_contact > now() - INTERVAL $__interval", "$__interval is not supported by Velo"},
		{"SELECT COUNT(*) AS n FROM booking WHERE $__timeFilter(d_contact", "missing close bracket"},
		{"SELECT COUNT(*) AS n FROM booking WHERE d_contact > $__timeFrom(x)", "$__timeFrom takes no arguments"},
		{"SELECT $__timeGroupAlias(d_contact, 1M), COUNT(*) AS n FROM booking GROUP BY 1", "$__timeGroupAlias is not a Velo macro"},
		{"SELECT COUNT(*) AS n FROM booking WHERE $__timefilter(d_contact)", "$__timefilter is not a Velo macro"},
	}
	for _, c := range cases {
		_, err := ExpandMacros(c.sql, tr, time.Hour, time.UTC)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ExpandMacros(%q) = %v, want an error containing %q", c.sql, err, c.want)
		}
	}
	if _, err := ExpandMacros("SELECT 1", backend.TimeRange{From: tr.To, To: tr.From}, 0, nil); err == nil {
		t.Error("an empty time range was accepted")
	}
}
