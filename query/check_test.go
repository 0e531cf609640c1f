package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Everything outside the allow-list is refused before any data is read, with a code, a
// message that names the problem and, where DuckDB gives one, the position.
func TestRejections(t *testing.T) {
	cat := testCatalog(t)
	parser := testParser(t)
	// The project may read bookings and three person columns (not asl, not province).
	allow := map[string][]string{"booking": nil, "person": {"birth_year", "sex", "region"}}
	tests := []struct {
		name, sql string
		code      string
		msg       string // substring
		pos       int    // -2: do not check
	}{
		{"two statements", "SELECT COUNT(*) FROM booking; SELECT COUNT(*) FROM booking", CodeRejected, "exactly one SELECT", -2},
		{"not a select", "DELETE FROM booking", CodeRejected, "only a single SELECT", -2},
		{"syntax error", "SELEC COUNT(*) FROM booking", CodeRejected, "syntax error", 0},
		{"table function", "SELECT COUNT(*) FROM read_parquet('/etc/passwd')", CodeRejected, "table functions", 21},
		{"file path", "SELECT COUNT(*) FROM '/data/booking/part-0.parquet'", CodeRejected, "table functions", -2},
		{"pid in output", "SELECT pid, COUNT(*) FROM booking GROUP BY pid", CodeRejected, "pid is an identifier", -2},
		{"pid in group by", "SELECT COUNT(*) FROM booking GROUP BY pid", CodeRejected, "identifier", -2},
		{"identifier column", "SELECT booking_key, COUNT(*) FROM booking GROUP BY booking_key", CodeRejected, "identifier", -2},
		{"pid in where", "SELECT COUNT(*) FROM booking WHERE pid IS NOT NULL", CodeRejected, "identifier", -2},
		{"bare column", "SELECT region, COUNT(*) FROM booking", CodeRejected, "neither a GROUP BY key nor an aggregate", 7},
		{"select star", "SELECT * FROM booking", CodeRejected, "SELECT * would release rows", 7},
		{"no aggregate", "SELECT region FROM booking GROUP BY region", CodeRejected, "at least one aggregate", -2},
		{"window", "SELECT region, COUNT(*) OVER () FROM booking GROUP BY region", CodeRejected, "window", -2},
		{"subquery in where", "SELECT COUNT(*) FROM booking WHERE wait_days > (SELECT 1)", CodeRejected, "subqueries", -2},
		{"subquery in from", "SELECT COUNT(*) FROM (SELECT * FROM booking) b", CodeRejected, "subqueries", -2},
		{"union", "SELECT COUNT(*) FROM booking UNION SELECT COUNT(*) FROM person", CodeRejected, "set operations", -2},
		{"cte", "WITH b AS (SELECT * FROM booking) SELECT COUNT(*) FROM b", CodeRejected, "common table", -2},
		{"min", "SELECT MIN(wait_days) FROM booking", CodeRejected, "MIN is not a differentially private aggregate", 7},
		{"max", "SELECT region, MAX(wait_days) FROM booking GROUP BY region", CodeRejected, "not a differentially private", -2},
		{"list", "SELECT list(wait_days) FROM booking", CodeRejected, "not a differentially private", -2},
		{"string_agg", "SELECT string_agg(region, ',') FROM booking", CodeRejected, "not a differentially private", -2},
		{"getenv", "SELECT COUNT(*) FROM booking WHERE getenv('HOME') = 'x'", CodeRejected, "function getenv is not allowed", -2},
		{"current_setting", "SELECT current_setting('memory_limit') AS s, COUNT(*) FROM booking GROUP BY s", CodeRejected, "not allowed", -2},
		{"read_text", "SELECT COUNT(*) FROM booking WHERE read_text('x') = ''", CodeRejected, "not allowed", -2},
		{"unknown table", "SELECT COUNT(*) FROM patients", CodeRejected, "unknown table patients", 21},
		{"unapproved table", "SELECT COUNT(*) FROM lab_result", CodeForbidden, "not approved for table lab_result", -2},
		{"unapproved column", "SELECT p.asl, COUNT(*) FROM booking b JOIN person p USING (pid) GROUP BY p.asl", CodeForbidden, "not approved for column person.asl", -2},
		{"unknown column", "SELECT COUNT(*) FROM booking WHERE wait > 3", CodeRejected, "unknown column wait", 35},
		{"ambiguous column", "SELECT region, COUNT(*) FROM booking JOIN person USING (pid) GROUP BY region", CodeRejected, "ambiguous", -2},
		{"join not on pid", "SELECT COUNT(*) FROM booking b JOIN person p ON b.region = p.region", CodeRejected, "joins are on pid only", -2},
		{"left join", "SELECT COUNT(*) FROM booking b LEFT JOIN person p USING (pid)", CodeRejected, "only INNER JOIN", -2},
		{"cross join", "SELECT COUNT(*) FROM booking, person", CodeRejected, "INNER JOIN on pid", -2},
		{"implicit cast", "SELECT COUNT(*) FROM booking WHERE region = 120", CodeRejected, "cannot compare a string with a number", -2},
		{"bad date literal", "SELECT COUNT(*) FROM booking WHERE d_contact > '2024-13-45'", CodeRejected, "malformed date literal", -2},
		{"no bounds", "SELECT SUM(date_diff('day', d_prescription, d_contact)) FROM booking", CodeOptions, "no clamping bounds", -2},
		{"bad bounds", "SELECT SUM(wait_days, contribution_bounds_per_group => (10, 1)) FROM booking", CodeOptions, "lo < hi", -2},
		{"count distinct other", "SELECT COUNT(DISTINCT region) FROM booking", CodeRejected, "supported for pid only", -2},
		{"having unreleased aggregate", "SELECT region, COUNT(*) AS n FROM booking GROUP BY region HAVING AVG(wait_days) > 3", CodeRejected, "not a released aggregate", -2},
		{"order by unreleased aggregate", "SELECT region, COUNT(*) AS n FROM booking GROUP BY region ORDER BY SUM(wait_days)", CodeRejected, "not a released aggregate", -2},
		{"aggregate in expression", "SELECT COUNT(*) * 2 FROM booking", CodeRejected, "stand alone", -2},
		{"distinct", "SELECT DISTINCT region, COUNT(*) FROM booking GROUP BY region", CodeRejected, "SELECT DISTINCT", -2},
		{"group by all", "SELECT region, COUNT(*) FROM booking GROUP BY ALL", CodeRejected, "GROUP BY ALL", -2},
		{"date shift by column", "SELECT COUNT(*) FROM booking WHERE d_contact + wait_days > '2024-01-01'", CodeRejected, "constant number of days", -2},
		{"ungroupable", "SELECT rx_key, COUNT(*) FROM booking GROUP BY rx_key", CodeRejected, "identifier", -2},
		{"unknown option", "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1, noise = 'none') COUNT(*) FROM booking", CodeOptions, "unknown option noise", -2},
		{"too many groups", "SELECT date_trunc('day', d_contact) AS d, region, priority, COUNT(*) FROM booking GROUP BY d, region, priority", CodeRejected, "more than 10000 combinations", -2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkSQL(context.Background(), parser, cat, tt.sql, allow)
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if qe.Code != tt.code || !strings.Contains(qe.Msg, tt.msg) {
				t.Errorf("got %s %q, want %s containing %q", qe.Code, qe.Msg, tt.code, tt.msg)
			}
			if tt.pos != -2 && qe.Pos != tt.pos {
				t.Errorf("position %d, want %d", qe.Pos, tt.pos)
			}
		})
	}
}

// The accepted queries a waiting-list analyst asks.
func TestAccepted(t *testing.T) {
	cat := testCatalog(t)
	parser := testParser(t)
	for _, q := range []string{
		"SELECT region, priority, AVG(CAST(within_target AS INTEGER)) AS share FROM booking GROUP BY region, priority",
		"SELECT service_code, MEDIAN(wait_days) FROM booking GROUP BY service_code",
		"SELECT service_code, PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY wait_days) AS p90 FROM booking GROUP BY 1",
		"SELECT date_trunc('month', d_contact) AS m, COUNT(*) FROM booking GROUP BY m ORDER BY m",
		"SELECT year(d_contact) AS y, VAR_SAMP(wait_days), STDDEV_SAMP(wait_days) FROM booking GROUP BY y",
		"SELECT CASE WHEN wait_days > 30 THEN 'late' ELSE 'on time' END AS band, COUNT(DISTINCT pid) FROM booking GROUP BY band",
		"SELECT COUNT(*) FROM booking WHERE d_contact BETWEEN '2024-01-01' AND '2024-12-31' AND channel <> 'phone' AND service_code LIKE '89%'",
		"SELECT p.sex, AVG(b.wait_days) FROM booking AS b JOIN person AS p ON b.pid = p.pid GROUP BY p.sex",
		"SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 0.25, delta = 1e-6, max_groups_contributed = 2) provider_id, COUNT(*) AS n FROM booking GROUP BY provider_id HAVING n > 100 ORDER BY n DESC LIMIT 3",
		"SELECT wait_days > 30 AS late, COUNT(*) FROM booking GROUP BY late",
		"SELECT d_contact, COUNT(*) FROM booking WHERE d_contact BETWEEN '2024-01-01' AND '2024-01-31' GROUP BY d_contact",
		"SELECT COUNT(*) FROM booking WHERE coalesce(garanzia, false) AND abs(wait_days - 10) < 5 AND date_diff('day', d_prescription, d_contact) <= 30",
	} {
		if _, err := checkSQL(context.Background(), parser, cat, q, allowAll(cat)); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
}

// Unary plus is the value itself and unary minus its negation: +x and x are one question,
// -x another (DuckDB hands both over as a one-argument call of + or -).
func TestUnarySigns(t *testing.T) {
	cat := testCatalog(t)
	parser := testParser(t)
	canonical := func(q string) string {
		t.Helper()
		p, err := checkSQL(context.Background(), parser, cat, q, allowAll(cat))
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return p.Canonical
	}
	plain := canonical("SELECT SUM(wait_days) AS s FROM booking")
	if plus := canonical("SELECT SUM(+wait_days) AS s FROM booking"); plus != plain {
		t.Errorf("SUM(+wait_days) is\n%s\nwant SUM(wait_days)'s\n%s", plus, plain)
	}
	if minus := canonical("SELECT SUM(-wait_days) AS s FROM booking"); minus == plain || !strings.Contains(minus, "-") {
		t.Errorf("SUM(-wait_days) is %s: the sign is lost", minus)
	}
}

// The leak check of the adversarial corpus recognises DuckDB's internal spellings of the
// user's SQL, and only those: the messages Velo gave before they were named for the user
// are caught, their replacements are not.
func TestInternalSpellingsAreCaught(t *testing.T) {
	for _, tc := range []struct {
		msg, sql string
		leak     bool
	}{
		{"function ~~~ is not allowed", "SELECT COUNT(*) FROM booking WHERE region GLOB '1*'", true},
		{"function trunc is not allowed", "SELECT COUNT(*) FROM booking WHERE d_contact + INTERVAL 30 DAY > d_appointment", true},
		{"function to_days is not allowed", "SELECT COUNT(*) FROM booking WHERE d_contact + INTERVAL 30 DAY > d_appointment", true},
		{"casts to UNBOUND are not supported", "SELECT COUNT(*) FROM booking WHERE CAST(wait_days AS FOOBAR) > 1", true},
		{"operator grouping_function is not supported", "SELECT region, grouping(region), COUNT(*) FROM booking GROUP BY region", true},
		{"function main.lower is not allowed", "SELECT COUNT(*) FROM booking WHERE x.lower(region) = 'a'", true},
		{"only INNER JOIN on pid is supported (got regular left join)", "SELECT COUNT(*) FROM booking LEFT JOIN person USING (pid)", true},
		{"comparison COMPARE_IN is not supported", "SELECT 1", true},
		{"GLOB is not supported: use LIKE", "SELECT COUNT(*) FROM booking WHERE region GLOB '1*'", false},
		{"date_trunc: the date part must be one of year, quarter, month, week, day", "SELECT date_trunc('hour', d_contact) AS h, COUNT(*) FROM booking GROUP BY h", false},
		{"function ~~ is not allowed", "SELECT COUNT(*) FROM booking WHERE region ~~ '1%'", false}, // the user wrote ~~
	} {
		if got := internalLeak(tc.msg, tc.sql, "/nonexistent") != ""; got != tc.leak {
			t.Errorf("internalLeak(%q) = %v, want %v", tc.msg, got, tc.leak)
		}
	}
}

// The DP clause is lifted with its bytes blanked, so DuckDB's positions are the user's.
func TestLiftDPClausePositions(t *testing.T) {
	q := "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon=0.5, delta=1e-6) region, COUNT(*) FROM booking WHERE wait > 1 GROUP BY region"
	out, opts, at, err := liftDPClause(q)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(q) || at != 7 || opts["epsilon"] != "0.5" || opts["delta"] != "1e-6" {
		t.Fatalf("lift: %q %v %d", out, opts, at)
	}
	_, err = checkSQL(context.Background(), testParser(t), testCatalog(t), q, allowAll(testCatalog(t)))
	var qe *Error
	if !errors.As(err, &qe) || qe.Pos != strings.Index(q, "wait >") {
		t.Fatalf("error %v, want position %d", err, strings.Index(q, "wait >"))
	}
}

// WHERE clauses on a key (or on the date column under a date_trunc or year key) narrow
// its public domain: groups no row could fall in are not released.
func TestDomainsNarrowedByWhere(t *testing.T) {
	cat := testCatalog(t)
	parser := testParser(t)
	tests := []struct {
		sql  string
		want []string
	}{
		{"SELECT region, COUNT(*) FROM booking WHERE region IN ('120', '030') GROUP BY region", []string{"030", "120"}},
		{"SELECT date_trunc('month', d_contact) AS m, COUNT(*) FROM booking WHERE d_contact >= '2024-03-15' AND d_contact < '2024-06-01' GROUP BY m",
			[]string{"2024-03-01", "2024-04-01", "2024-05-01"}},
		{"SELECT year(d_contact) AS y, COUNT(*) FROM booking WHERE d_contact >= '2025-01-01' GROUP BY y", []string{"2025"}},
		{"SELECT d_contact, COUNT(*) FROM booking WHERE d_contact BETWEEN '2025-12-30' AND '2026-01-31' GROUP BY d_contact", []string{"2025-12-30", "2025-12-31"}},
		{"SELECT priority, COUNT(*) FROM booking WHERE priority = 'U' OR priority = 'B' GROUP BY priority", []string{"B", "D", "P", "U"}}, // OR is not narrowed
	}
	for _, tt := range tests {
		p, err := checkSQL(context.Background(), parser, cat, tt.sql, allowAll(cat))
		if err != nil {
			t.Fatalf("%s: %v", tt.sql, err)
		}
		var got []string
		for _, v := range p.Keys[0].Domain.Values {
			got = append(got, fmt.Sprint(jsonKey(v)))
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s:\n got %v\nwant %v", tt.sql, got, tt.want)
		}
	}
}
