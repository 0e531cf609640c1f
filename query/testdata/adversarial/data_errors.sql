Data-dependent errors (docs/privacy.md, "Errors and timing"): an error that happens on some datasets and not on
their neighbours reveals a person for free. Every expression that could fail on a value
(division by zero, casts, overflow, dates out of range) must be answered through its
total form (TRY_CAST, guarded division, arithmetic in doubles), or refused before any
data is read — never fail while running.

-- name: division by zero on every row
-- expect: answered rows=1 columns=s:dp
SELECT SUM(wait_days / (wait_days - wait_days), contribution_bounds_per_group => (0, 10)) AS s FROM booking

-- name: division by zero on the rows of one person
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE 1 / (wait_days - 17) > 0

-- name: integer division by zero
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE wait_days // (wait_days - 3) = 1

-- name: modulo by zero
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE wait_days % (wait_days - wait_days) = 0

-- name: division by zero in a CASE key
-- expect: answered rows=2 columns=k:key|n:dp
SELECT CASE WHEN 100 / (wait_days - 5) > 1 THEN 'a' ELSE 'b' END AS k, COUNT(*) AS n FROM booking GROUP BY k

-- name: division by zero in a constant
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE wait_days > 1 / 0

-- name: division by a string length that is zero for some rows
-- expect: answered rows=1 columns=a:dp
SELECT AVG(10 / length(trim(channel)), contribution_bounds_per_group => (0, 10)) AS a FROM booking

-- name: AVG of a reciprocal needs bounds
-- expect: refused invalid_options "AVG: no clamping bounds are known for (100 / wait_days)"
SELECT AVG(100 / wait_days) FROM booking

-- name: cast of codes to integer fails on some rows
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE CAST(service_code AS INTEGER) > 80

-- name: cast of provider ids to BIGINT in a sum
-- expect: answered rows=1 columns=s:dp
SELECT SUM(CAST(provider_id AS BIGINT), contribution_bounds_per_group => (0, 1000000)) AS s FROM booking

-- name: cast of text to a date fails on every row
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE CAST(region AS DATE) > '2024-01-01'

-- name: cast of text to boolean
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE CAST(status AS BOOLEAN)

-- name: cast of a huge product to INTEGER overflows
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE CAST(wait_days * 1e30 AS INTEGER) > 0

-- name: cast to SMALLINT overflows on long waits
-- expect: answered rows=1 columns=s:dp
SELECT SUM(CAST(wait_days * 1000 AS SMALLINT), contribution_bounds_per_group => (0, 30000)) AS s FROM booking

-- name: cast to DECIMAL with too little precision
-- expect: answered rows=1 columns=s:dp
SELECT SUM(CAST(wait_days AS DECIMAL(3, 2)), contribution_bounds_per_group => (0, 10)) AS s FROM booking

-- name: cast of a date to an integer
-- expect: refused sql_rejected "a date cannot be cast to INTEGER: use year(d), month(d) or date_diff('day', DATE '2024-01-01', d) for a number"
SELECT COUNT(*) AS n FROM booking WHERE CAST(d_contact AS INTEGER) > 0

-- name: cast of a number to a date
-- expect: refused sql_rejected "a number cannot be cast to DATE: use a date column, DATE '2025-01-31', or a date ± a number of days"
SELECT COUNT(*) AS n FROM booking WHERE CAST(wait_days AS DATE) > '2024-01-01'

-- name: cast of a date to boolean
-- expect: refused sql_rejected "a date cannot be cast to BOOLEAN: use year(d), month(d) or date_diff('day', DATE '2024-01-01', d) for a number"
SELECT COUNT(*) AS n FROM booking WHERE CAST(d_contact AS BOOLEAN)

-- name: cast of a boolean to a date
-- expect: refused sql_rejected "a boolean cannot be cast to DATE: use a date column, DATE '2025-01-31', or a date ± a number of days"
SELECT COUNT(*) AS n FROM booking WHERE CAST(garanzia AS DATE) > '2024-01-01'

-- name: cast of a date to text and back
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE CAST(CAST(d_contact AS VARCHAR) AS DATE) = d_contact

-- name: malformed date literal is refused from the text alone
-- expect: refused sql_rejected "malformed date literal (want 'YYYY-MM-DD')"
SELECT COUNT(*) AS n FROM booking WHERE d_contact > '2024-02-30'

-- name: cast of a malformed date literal
-- expect: refused sql_rejected "malformed date literal"
SELECT COUNT(*) AS n FROM booking WHERE d_contact > CAST('99999-01-01' AS DATE)

-- name: make_date on values from the data
-- expect: refused sql_rejected "function make_date is not allowed"
SELECT COUNT(*) AS n FROM booking WHERE make_date(2024, wait_days, 1) > '2024-01-01'

-- name: strptime with a data-dependent format failure
-- expect: refused sql_rejected "function strptime is not allowed"
SELECT COUNT(*) AS n FROM booking WHERE strptime(provider_id, '%Y') IS NULL

-- name: regexp with an invalid pattern
-- expect: refused sql_rejected "regexp_matches: regular expressions are not supported: use LIKE"
SELECT COUNT(*) AS n FROM booking WHERE regexp_matches(provider_id, '(')

-- name: error() raises on a chosen row
-- expect: refused sql_rejected "function error is not allowed"
SELECT COUNT(*) AS n FROM booking WHERE CASE WHEN wait_days = 364 THEN error('boom') ELSE TRUE END

-- name: LIKE with a trailing escape character
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE provider_id LIKE '12%\'

-- name: LIKE ... ESCAPE
-- expect: refused sql_rejected "LIKE ... ESCAPE is not supported: write the pattern without ESCAPE" at=52
SELECT COUNT(*) AS n FROM booking WHERE provider_id LIKE '12!%' ESCAPE '!'

-- name: ILIKE with regular-expression characters
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE channel ILIKE '[(*+?'

-- name: integer overflow in a product of columns
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE wait_days * wait_days * wait_days * wait_days * wait_days * wait_days * wait_days * wait_days > 0

-- name: overflow of the largest BIGINT plus one
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE wait_days + 9223372036854775807 > 0

-- name: abs of the smallest BIGINT
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE abs(CAST(-9223372036854775808 AS BIGINT) + wait_days) > 0

-- name: negation of the smallest BIGINT
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE -(wait_days - 9223372036854775807 - 1) > 0

-- name: HUGEINT literal
-- expect: refused sql_rejected "integer literal out of range"
SELECT COUNT(*) AS n FROM booking WHERE wait_days < 170141183460469231731687303715884105727

-- name: infinite products inside a sum are clamped
-- expect: answered rows=1 columns=s:dp
SELECT SUM(wait_days * 1e300 * 1e300, contribution_bounds_per_group => (0, 100)) AS s FROM booking

-- name: infinity minus infinity inside an average
-- expect: answered rows=1 columns=a:dp
SELECT AVG(wait_days * 1e300 * 1e300 - wait_days * 1e300 * 1e300, contribution_bounds_per_group => (0, 100)) AS a FROM booking

-- name: NaN inside a median
-- expect: answered rows=1 columns=m:dp
SELECT MEDIAN((wait_days * 1e300 * 1e300) / (wait_days * 1e300 * 1e300), contribution_bounds_per_group => (0, 2)) AS m FROM booking

-- name: infinite values in a variance
-- expect: answered rows=1 columns=v:dp
SELECT VAR_SAMP(wait_days * 1e300 * 1e300, contribution_bounds_per_group => (0, 100)) AS v FROM booking

-- name: round to a huge number of digits
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE round(wait_days, 2147483648) > 0

-- name: round to a negative number of digits
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE round(wait_days, -400) = 0

-- name: round to a number of digits
-- expect: answered rows=1 columns=w:dp
SELECT AVG(round(wait_days / 7, 1)) AS w FROM booking

-- name: round with a data-dependent number of digits
-- expect: refused sql_rejected "round: the number of digits must be a constant"
SELECT COUNT(*) AS n FROM booking WHERE round(1.5, wait_days) > 0

-- name: floor and ceil of infinities
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE floor(wait_days * 1e308 * 10) > ceil(-wait_days * 1e308 * 10)

-- name: date shifted beyond the largest day allowed
-- expect: refused sql_rejected "dates can be shifted by a constant number of days only (at most 100000)"
SELECT COUNT(*) AS n FROM booking WHERE d_contact + 2147483647 > '2024-01-01'

-- name: date shifted by a column
-- expect: refused sql_rejected "dates can be shifted by a constant number of days only"
SELECT COUNT(*) AS n FROM booking WHERE d_contact + wait_days > '2024-01-01'

-- name: date shifted forward by the most allowed
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE d_contact + 100000 > '2024-01-01'

-- name: date shifted backward by the most allowed
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE d_contact - 100000 < '2024-01-01'

-- name: shifted date as a key
-- expect: answered selection columns=m:key|n:dp
-- request: delta=1e-6
SELECT date_trunc('month', d_contact + 30) AS m, COUNT(*) AS n FROM booking GROUP BY m

-- name: difference of dates with nulls
-- expect: answered rows=1 columns=a:dp
SELECT AVG(d_delivered - d_contact, contribution_bounds_per_group => (0, 365)) AS a FROM booking

-- name: date_diff across the whole calendar
-- expect: answered rows=1 columns=a:dp
SELECT AVG(date_diff('day', DATE '0001-01-01', d_contact), contribution_bounds_per_group => (0, 1e6)) AS a FROM booking

-- name: date_diff in years from a far date literal
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE date_diff('year', d_contact, DATE '9999-12-31') > 0

-- name: date_part with an unsupported part
-- expect: refused sql_rejected "EXTRACT (date_part): the date part must be one of"
SELECT COUNT(*) AS n FROM booking WHERE date_part('epoch', d_contact) > 0

-- name: date_trunc with a data-dependent part
-- expect: refused sql_rejected "date_trunc: the date part must be one of"
SELECT date_trunc(channel, d_contact) AS d, COUNT(*) AS n FROM booking GROUP BY d

-- name: substring at a huge position
-- expect: refused sql_rejected "substring: positions and lengths must be integer constants"
SELECT COUNT(*) AS n FROM booking WHERE substring(provider_id, 2147483648, 1) = 'x'

-- name: substring at a data-dependent position
-- expect: refused sql_rejected "positions and lengths must be integer constants"
SELECT COUNT(*) AS n FROM booking WHERE substring(provider_id, wait_days, 1) = 'x'

-- name: left with a negative length
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE left(provider_id, -5) = ''

-- name: nullif and coalesce over nulls
-- expect: answered rows=1 columns=a:dp
SELECT AVG(coalesce(nullif(wait_days, 0), 1), contribution_bounds_per_group => (0, 365)) AS a FROM booking

-- name: least and greatest with nulls
-- expect: answered rows=1 columns=a:dp
SELECT AVG(least(wait_days, NULL, 30)) AS a FROM booking

-- name: comparing a date with a number
-- expect: refused sql_rejected "cannot compare a date with a number"
SELECT COUNT(*) AS n FROM booking WHERE d_contact > 20240101

-- name: comparing text with a number would cast every row
-- expect: refused sql_rejected "cannot compare a string with a number: cast one side explicitly"
SELECT COUNT(*) AS n FROM booking WHERE provider_id = 120901

-- name: IN list mixing text and numbers
-- expect: refused sql_rejected "cannot compare a string with a number"
SELECT COUNT(*) AS n FROM booking WHERE region IN ('120', 30)

-- name: BETWEEN a date and a malformed date
-- expect: refused sql_rejected "malformed date literal"
SELECT COUNT(*) AS n FROM booking WHERE d_contact BETWEEN '2024-01-01' AND '2024-13-01'

-- name: arithmetic on text
-- expect: refused sql_rejected "the operands of + must be numbers, got a string (CAST(x AS INTEGER) makes it a number)" at=40
SELECT COUNT(*) AS n FROM booking WHERE provider_id + 1 > 0

-- name: a CASE mixing text and numbers
-- expect: refused sql_rejected "CASE results mix number and string: make them one type"
SELECT CASE WHEN wait_days > 30 THEN 1 ELSE 'short' END AS k, COUNT(*) FROM booking GROUP BY k

-- name: a key that is NaN on every row
-- request: delta=1e-6
-- expect: answered selection columns=k:key|n:dp
SELECT CAST(provider_id AS DOUBLE) * 1e300 * 1e300 - CAST(provider_id AS DOUBLE) * 1e300 * 1e300 AS k, COUNT(*) AS n FROM booking GROUP BY k

-- name: a key that is infinite on every row
-- request: delta=1e-6
-- expect: answered selection columns=k:key|n:dp
SELECT CAST(provider_id AS DOUBLE) * 1e300 * 1e300 AS k, COUNT(*) AS n FROM booking GROUP BY k

-- name: a key that overflows on some rows only
-- request: delta=1e-6
-- expect: answered selection columns=k:key|n:dp
SELECT CAST(provider_id AS DOUBLE) * CAST(provider_id AS DOUBLE) * 1e300 AS k, COUNT(*) AS n FROM booking GROUP BY k

-- name: the largest double as a public CASE key
-- expect: answered rows=2 columns=k:key|n:dp
SELECT CASE WHEN wait_days > 10 THEN 1.7976931348623157e308 ELSE 0 END AS k, COUNT(*) AS n FROM booking GROUP BY k

-- name: minus zero and zero are one group
-- expect: answered rows=1 columns=k:key|n:dp
SELECT CASE WHEN wait_days > 5 THEN -0.0 ELSE 0.0 END AS k, COUNT(*) AS n FROM booking GROUP BY k
