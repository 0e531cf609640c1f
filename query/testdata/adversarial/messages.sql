Refusals must speak the user's SQL, not DuckDB's: each names the construct the user wrote
(never DuckDB's internal spelling of it: ~~~ for GLOB, to_days(trunc(...)) for INTERVAL,
UNBOUND for an unknown type), its position, and what to write instead.

-- name: INTERVAL n DAY added to a date
-- expect: refused sql_rejected "intervals (INTERVAL 30 DAY, INTERVAL '1 month') are not supported: add a number of days to a date (d_contact + 30) or compare dates with date_diff('day', d_contact, d_appointment) > 30" at=68
SELECT COUNT(*) AS n FROM booking WHERE d_appointment > d_contact + INTERVAL 30 DAY

-- name: INTERVAL as a string
-- expect: refused sql_rejected "intervals (INTERVAL 30 DAY, INTERVAL '1 month') are not supported" at=68
SELECT COUNT(*) AS n FROM booking WHERE d_appointment > d_contact + INTERVAL '30 days'

-- name: INTERVAL compared with a difference of dates
-- expect: refused sql_rejected "compare dates with date_diff('day', d_contact, d_appointment) > 30" at=68
SELECT COUNT(*) AS n FROM booking WHERE d_appointment - d_contact > INTERVAL 3 DAY

-- name: date_add with an interval
-- expect: refused sql_rejected "date_add is not supported: add a number of days to a date (d_contact + 30)" at=7
SELECT date_add(d_contact, INTERVAL 1 MONTH) AS m, COUNT(*) AS n FROM booking GROUP BY 1

-- name: days added as a number are the way
-- request: delta=1e-6
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE d_appointment > d_contact + 30

-- name: cast to a type that does not exist
-- expect: refused sql_rejected "unknown type FOOBAR in a cast: cast to INTEGER, BIGINT, SMALLINT, DOUBLE (or FLOAT, DECIMAL), VARCHAR, DATE, BOOLEAN" at=40
SELECT COUNT(*) AS n FROM booking WHERE CAST(wait_days AS FOOBAR) > 1

-- name: cast to a schema-qualified type
-- expect: refused sql_rejected "unknown type s.T in a cast" at=40
SELECT COUNT(*) AS n FROM booking WHERE CAST(wait_days AS s.T) > 1

-- name: cast to a type Velo does not take
-- expect: refused sql_rejected "casts to HUGEINT are not supported: cast to INTEGER, BIGINT, SMALLINT, DOUBLE (or FLOAT, DECIMAL), VARCHAR, DATE, BOOLEAN" at=40
SELECT COUNT(*) AS n FROM booking WHERE CAST(wait_days AS HUGEINT) > 1

-- name: cast to a list type
-- expect: refused sql_rejected "casts to a list type (T[]) are not supported" at=49
SELECT COUNT(*) AS n FROM booking WHERE wait_days::INTEGER[] IS NULL

-- name: timestamp literal
-- expect: refused sql_rejected "TIMESTAMP values are not supported: Velo's dates are DATEs (DATE '2025-01-31', CAST(x AS DATE))" at=62
SELECT COUNT(*) AS n FROM booking WHERE d_contact > TIMESTAMP '2024-01-01 00:00:00'

-- name: GLOB
-- expect: refused sql_rejected "GLOB is not supported: use LIKE, where % matches any text and _ one character" at=52
SELECT COUNT(*) AS n FROM booking WHERE provider_id GLOB '12*'

-- name: regular expression operator
-- expect: refused sql_rejected "regular expressions (SIMILAR TO, ~, regexp_full_match) are not supported: use LIKE, starts_with, ends_with or contains" at=52
SELECT COUNT(*) AS n FROM booking WHERE provider_id ~ '12.*'

-- name: GROUPING()
-- expect: refused sql_rejected "GROUPING() is not supported: Velo has no grouping sets (ROLLUP, CUBE), so it would always be 0" at=15
SELECT region, grouping(region) AS g, COUNT(*) AS n FROM booking GROUP BY region

-- name: a number beyond float64 in WHERE
-- expect: refused sql_rejected "number literal out of range: numbers must lie within ±1.7e308" at=52
SELECT COUNT(*) AS n FROM booking WHERE wait_days > 1e400

-- name: an integer beyond int64
-- expect: refused sql_rejected "integer literal out of range: integers must lie within ±9.2e18" at=52
SELECT COUNT(*) AS n FROM booking WHERE wait_days > 123456789012345678901234567890

-- name: HAVING with a function of an output
-- expect: refused sql_rejected "abs() of a released value is not supported in HAVING: HAVING may combine output columns (by name or alias), released aggregates and constants with + - * /, comparisons, BETWEEN, IN, AND, OR, NOT and IS NULL" at=65
SELECT region, COUNT(*) AS n FROM booking GROUP BY region HAVING abs(n) > 3

-- name: HAVING with a function of an aggregate
-- expect: refused sql_rejected "abs() of a released value is not supported in HAVING" at=65
SELECT region, COUNT(*) AS n FROM booking GROUP BY region HAVING abs(COUNT(*)) > 3

-- name: ORDER BY a function of an output
-- expect: refused sql_rejected "abs() of a released value is not supported in ORDER BY or HAVING: order by an output column (by name, alias or position) or a released aggregate" at=67
SELECT region, COUNT(*) AS n FROM booking GROUP BY region ORDER BY abs(n)

-- name: HAVING on a column that is not released
-- expect: refused sql_rejected "wait_days is not an output column of the query: HAVING and ORDER BY read released values only" at=65
SELECT region, COUNT(*) AS n FROM booking GROUP BY region HAVING wait_days > 3

-- name: HAVING with BETWEEN, IN and a unary minus on released values
-- expect: answered rows=21 columns=region:key|n:dp
SELECT region, COUNT(*) AS n FROM booking GROUP BY region HAVING n BETWEEN -1e12 AND 1e12 AND -n < 1e12 AND n NOT IN (0.5, 1.5) AND NOT n NOT BETWEEN -1e12 AND 1e12

-- name: HAVING IN with a non-constant
-- expect: refused sql_rejected "IN lists hold constants only" at=74
SELECT region, COUNT(*) AS n FROM booking GROUP BY region HAVING n IN (1, n)

-- name: subscript
-- expect: refused sql_rejected "subscripts (x[1]) are not supported: use substring(x, 1, 1) on strings" at=40
SELECT COUNT(*) AS n FROM booking WHERE region[1] = '1'

-- name: string concatenation
-- expect: refused sql_rejected "string concatenation (||) is not supported" at=47
SELECT COUNT(*) AS n FROM booking WHERE region || 'x' = '120x'

-- name: current_date
-- expect: refused sql_rejected "current_date is not supported: a release must not depend on the day it is made; write the date ('2025-01-31')" at=52
SELECT COUNT(*) AS n FROM booking WHERE d_contact > current_date

-- name: now()
-- expect: refused sql_rejected "now() is not supported: a release must not depend on the day it is made" at=52
SELECT COUNT(*) AS n FROM booking WHERE d_contact > now()

-- name: a function with too many arguments
-- expect: refused sql_rejected "trim takes 1 argument, got 2" at=40
SELECT COUNT(*) AS n FROM booking WHERE trim(region, 'x') = '1'

-- name: a function Velo does not have
-- expect: refused sql_rejected "function position is not allowed (docs/privacy.md lists the functions a query may call)" at=40
SELECT COUNT(*) AS n FROM booking WHERE position('1' IN region) = 1

-- name: LIKE on a number
-- expect: refused sql_rejected "the operands of LIKE must be strings, got a number (CAST(x AS VARCHAR) makes it a string)" at=40
SELECT COUNT(*) AS n FROM booking WHERE wait_days LIKE '1%'

-- name: BETWEEN SYMMETRIC
-- expect: refused sql_rejected "the query uses SQL that Velo cannot check (BETWEEN SYMMETRIC, for one)" at=58
SELECT COUNT(*) AS n FROM booking WHERE wait_days BETWEEN SYMMETRIC 1 AND 2

-- name: SELECT DISTINCT at its keyword
-- expect: refused sql_rejected "SELECT DISTINCT would release rows" at=7
SELECT DISTINCT region, COUNT(*) AS n FROM booking GROUP BY region

-- name: WITH at its keyword
-- expect: refused sql_rejected "WITH (common table expressions) is not supported" at=0
WITH b AS (SELECT * FROM booking) SELECT COUNT(*) AS n FROM b

-- name: UNION at its keyword
-- expect: refused sql_rejected "set operations (UNION, INTERSECT, EXCEPT) are not supported" at=34
SELECT COUNT(*) AS n FROM booking UNION ALL SELECT COUNT(*) AS n FROM person

-- name: a subquery in FROM at its SELECT
-- expect: refused sql_rejected "subqueries are not supported: name a table" at=27
SELECT COUNT(*) AS n FROM (SELECT * FROM booking)

-- name: LEFT JOIN in SQL words
-- expect: refused sql_rejected "LEFT JOIN is not supported: only INNER JOIN on pid (JOIN b USING (pid))"
SELECT COUNT(*) AS n FROM booking b LEFT JOIN person p USING (pid)

-- name: OPTIONS errors point at the clause
-- expect: refused invalid_options "unknown option noise (epsilon, delta, max_groups_contributed, clamp_to_range)" at=7
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(noise = 1) COUNT(*) AS n FROM booking

-- name: a key without a public domain and no delta names the key
-- expect: refused invalid_options "the GROUP BY key y has no public domain, so groups are chosen by DP partition selection, which needs delta > 0 (e.g. delta = 1e-6), and the project's default delta is 0"
SELECT EXTRACT(year FROM d_appointment) AS y, COUNT(*) AS n FROM booking GROUP BY y

-- name: EXTRACT of a part Velo does not have
-- expect: refused sql_rejected "EXTRACT (date_part): the date part must be one of year, quarter, month, week, day, dayofweek, isodow, dayofyear" at=48
SELECT COUNT(*) AS n FROM booking WHERE EXTRACT(epoch FROM d_contact) > 0

-- name: EXTRACT of a period date has a public domain
-- expect: answered rows=2 columns=y:key|n:dp
SELECT EXTRACT(year FROM d_contact) AS y, COUNT(*) AS n FROM booking GROUP BY y

-- name: unary plus is the value itself
-- expect: answered rows=1 columns=s:dp
SELECT SUM(+wait_days) AS s FROM booking
