Option tricks in the ZetaSQL clause `SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(...)` and in
contribution_bounds_per_group: comments inside, look-alike letters and digits, NaN,
Infinity, huge, tiny, negative and hex values, duplicates and unknown options. (The
ranges of epsilon and delta are tested elsewhere.) A clause the lexer does not lift is
left to DuckDB's parser, which refuses it.

-- name: max_groups_contributed = NaN
-- expect: refused invalid_options "is not a decimal number"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = NaN) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed = 'NaN' as a string
-- expect: refused invalid_options "is not a decimal number"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 'NaN') region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed = Infinity
-- expect: refused invalid_options "is not a decimal number"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = Infinity) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed = inf
-- expect: refused invalid_options "is not a decimal number"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = inf) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed huge
-- expect: refused invalid_options "max_groups_contributed must be an integer from 1 to 100"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 1e18) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed beyond float range
-- expect: refused invalid_options "option max_groups_contributed: \"1e400\" is out of range"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 1e400) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed tiny
-- expect: refused invalid_options "max_groups_contributed must be an integer from 1 to 100"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 1e-300) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed zero
-- expect: refused invalid_options "max_groups_contributed must be an integer from 1 to 100"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 0) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed negative
-- expect: refused sql_rejected "option max_groups_contributed: value must be a number or a word"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = -1) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed negative in a string
-- expect: refused invalid_options "max_groups_contributed must be an integer from 1 to 100"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = '-1') region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed fractional
-- expect: refused invalid_options "max_groups_contributed must be an integer from 1 to 100"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 2.5) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed hex
-- expect: refused sql_rejected "OPTIONS entries are name = value"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 0x10) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed hex in a string
-- expect: refused invalid_options "option max_groups_contributed: \"0x10\" is not a decimal number"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = '0x10') region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed with an underscore separator is refused (plain decimals only)
-- expect: refused invalid_options "option max_groups_contributed: \"1_0\" is not a decimal number"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = '1_0') region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed as a word
-- expect: refused invalid_options "option max_groups_contributed: \"ten\" is not a decimal number"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = ten) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed TRUE
-- expect: refused invalid_options "is not a decimal number"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = TRUE) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed in double quotes
-- expect: refused invalid_options "is not a decimal number"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = "3") region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed with SQL in the string
-- expect: refused invalid_options "is not a decimal number"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = '3; DROP VIEW booking') region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed with full-width digit look-alike
-- expect: refused invalid_options "option max_groups_contributed: \"３\" is not a decimal number"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = ３) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed with Arabic-Indic digit
-- expect: refused invalid_options "is not a decimal number"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = ٣) region, COUNT(*) FROM booking GROUP BY region

-- name: max_groups_contributed with superscript digit
-- expect: refused invalid_options "is not a decimal number"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = '²') region, COUNT(*) FROM booking GROUP BY region

-- name: option name with a Cyrillic a
-- expect: refused invalid_options "unknown option mаx_groups_contributed (epsilon, delta, max_groups_contributed, clamp_to_range)"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(mаx_groups_contributed = 2) region, COUNT(*) FROM booking GROUP BY region

-- name: option name with a zero-width space
-- expect: refused invalid_options "unknown option"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed​ = 2) region, COUNT(*) FROM booking GROUP BY region

-- name: option name followed by a no-break space
-- expect: refused invalid_options "unknown option"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 2) region, COUNT(*) FROM booking GROUP BY region

-- name: option name in double quotes
-- expect: refused invalid_options "unknown option"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS("max_groups_contributed" = 2) region, COUNT(*) FROM booking GROUP BY region

-- name: DIFFERENTIAL_PRIVACY with a Cyrillic A is not the clause
-- expect: refused sql_rejected "syntax error"
SELECT WITH DIFFERENTIАL_PRIVACY OPTIONS(max_groups_contributed = 2) region, COUNT(*) FROM booking GROUP BY region

-- name: OPTIONS with a Cyrillic T
-- expect: refused sql_rejected "is not allowed"
SELECT WITH DIFFERENTIAL_PRIVACY OPТIONS(max_groups_contributed = 2) region, COUNT(*) FROM booking GROUP BY region

-- name: duplicate option
-- expect: refused sql_rejected "option max_groups_contributed given twice"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 1, max_groups_contributed = 100) region, COUNT(*) FROM booking GROUP BY region

-- name: duplicate option in another case
-- expect: refused sql_rejected "option max_groups_contributed given twice"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 1, MAX_GROUPS_CONTRIBUTED = 100) region, COUNT(*) FROM booking GROUP BY region

-- name: duplicate option without a comma
-- expect: refused sql_rejected "given twice"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 1 max_groups_contributed = 100) region, COUNT(*) FROM booking GROUP BY region

-- name: a second clause after the first
-- expect: refused sql_rejected "syntax error"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 1) WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 100) region, COUNT(*) FROM booking GROUP BY region

-- name: unknown option noise
-- expect: refused invalid_options "unknown option noise (epsilon, delta, max_groups_contributed, clamp_to_range)"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(noise = 'none') region, COUNT(*) FROM booking GROUP BY region

-- name: ZetaSQL privacy_unit_column set to a non-identifier
-- expect: refused invalid_options "unknown option privacy_unit_column"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(privacy_unit_column = region) region, COUNT(*) FROM booking GROUP BY region

-- name: BigQuery max_rows_contributed
-- expect: refused invalid_options "unknown option max_rows_contributed"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_rows_contributed = 1000) region, COUNT(*) FROM booking GROUP BY region

-- name: min_privacy_units_per_group
-- expect: refused invalid_options "unknown option min_privacy_units_per_group"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(min_privacy_units_per_group = 0) provider_id, COUNT(*) FROM booking GROUP BY provider_id

-- name: unknown option whose value hides a parenthesis
-- expect: refused invalid_options "unknown option x"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(x = ')') region, COUNT(*) FROM booking GROUP BY region

-- name: missing equals sign
-- expect: refused sql_rejected "OPTIONS entries are name = value"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed 2) region, COUNT(*) FROM booking GROUP BY region

-- name: nested parentheses
-- expect: refused sql_rejected "OPTIONS entries are name = value"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS((max_groups_contributed = 2)) region, COUNT(*) FROM booking GROUP BY region

-- name: a semicolon inside OPTIONS
-- expect: refused sql_rejected "OPTIONS entries are name = value"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 2; SELECT 1) region, COUNT(*) FROM booking GROUP BY region

-- name: OPTIONS never closed
-- expect: refused sql_rejected "OPTIONS( is not closed"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 2

-- name: OPTIONS without parentheses
-- expect: refused sql_rejected "OPTIONS must be followed by (name = value, ...)"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS max_groups_contributed = 2 region, COUNT(*) FROM booking GROUP BY region

-- name: OPTIONS after FROM is not the clause
-- expect: refused sql_rejected "syntax error"
SELECT region, COUNT(*) FROM booking GROUP BY region OPTIONS(max_groups_contributed = 2)

-- name: the clause inside a subquery is not lifted
-- expect: refused sql_rejected "syntax error"
SELECT COUNT(*) FROM booking WHERE region IN (SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 2) region FROM person)

-- name: the clause's name inside a string is not the clause
-- expect: refused sql_rejected "is neither a GROUP BY key nor an aggregate"
SELECT 'WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 2)' region, COUNT(*) FROM booking GROUP BY region

-- name: a comment hides an option
-- expect: answered rows=21 columns=region:key|n:dp
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 2 /*, max_groups_contributed = 100 */) region, COUNT(*) AS n FROM booking GROUP BY region

-- name: comments around every token of the clause
-- expect: answered rows=21 columns=region:key|n:dp
SELECT /*a*/ WITH /*b*/ DIFFERENTIAL_PRIVACY /*c*/ OPTIONS /*d*/ ( /*e*/ max_groups_contributed /*f*/ = /*g*/ 3 /*h*/ ) region, COUNT(*) AS n FROM booking GROUP BY region

-- name: a line comment inside OPTIONS
-- expect: answered rows=4 columns=priority:key|n:dp
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed -- the L0 bound
  = 2) priority, COUNT(*) AS n FROM booking GROUP BY priority

-- name: an unclosed block comment after the clause
-- expect: refused sql_rejected "unterminated"
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 2) priority, COUNT(*) AS n FROM booking GROUP BY priority /*

-- name: max_groups_contributed as a quoted number
-- expect: answered rows=4 columns=priority:key|n:dp
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = '3') priority, COUNT(*) AS n FROM booking GROUP BY priority

-- name: max_groups_contributed with leading zeros and exponent
-- expect: answered rows=4 columns=priority:key|n:dp
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 0.03e2) priority, COUNT(*) AS n FROM booking GROUP BY priority

-- name: max_groups_contributed written with =>
-- expect: answered rows=4 columns=priority:key|n:dp
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed => 100) priority, COUNT(*) AS n FROM booking GROUP BY priority

-- name: lower-case clause with a trailing comma
-- expect: answered rows=4 columns=priority:key|n:dp
select with differential_privacy options(max_groups_contributed = 1,) priority, count(*) as n from booking group by priority

-- name: empty OPTIONS
-- expect: answered rows=4 columns=priority:key|n:dp
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS() priority, COUNT(*) AS n FROM booking GROUP BY priority

-- name: the clause without OPTIONS
-- expect: answered rows=4 columns=priority:key|n:dp
SELECT WITH DIFFERENTIAL_PRIVACY priority, COUNT(*) AS n FROM booking GROUP BY priority

-- name: the request's max_groups_contributed out of range
-- request: max_groups_contributed=1000
-- expect: refused invalid_options "max_groups_contributed must be from 1 to 100"
SELECT priority, COUNT(*) AS n FROM booking GROUP BY priority

-- name: bounds NaN as an identifier
-- expect: refused sql_rejected "unknown column NaN: NaN and infinity are not numbers a query may use"
SELECT SUM(wait_days, contribution_bounds_per_group => (NaN, 10)) FROM booking

-- name: bounds NaN as a cast string
-- expect: refused sql_rejected "contribution bounds must be number constants"
SELECT SUM(wait_days, contribution_bounds_per_group => (CAST('NaN' AS DOUBLE), 10)) FROM booking

-- name: bounds Infinity as a string
-- expect: refused sql_rejected "contribution bounds must be number constants"
SELECT AVG(wait_days, contribution_bounds_per_group => (0, 'Infinity')) FROM booking

-- name: bounds beyond the double range
-- expect: refused sql_rejected "number literal out of range: numbers must lie within ±1.7e308" at=59
SELECT SUM(wait_days, contribution_bounds_per_group => (0, 1e400)) FROM booking

-- name: bounds huge
-- expect: refused invalid_options "SUM: bounds (0, 1e+10) must be finite, lo < hi"
SELECT SUM(wait_days, contribution_bounds_per_group => (0, 1e10)) FROM booking

-- name: bounds with a huge negative lower bound
-- expect: refused invalid_options "within ±1e9"
SELECT AVG(wait_days, contribution_bounds_per_group => (-1e308, 0)) FROM booking

-- name: bounds reversed
-- expect: refused invalid_options "lo < hi"
SELECT AVG(wait_days, contribution_bounds_per_group => (10, 1)) FROM booking

-- name: bounds empty
-- expect: refused invalid_options "lo < hi"
SELECT SUM(wait_days, contribution_bounds_per_group => (5, 5)) FROM booking

-- name: bounds minus zero and zero
-- expect: refused invalid_options "lo < hi"
SELECT SUM(wait_days, contribution_bounds_per_group => (-0.0, 0.0)) FROM booking

-- name: bounds at the edge of the allowed range
-- expect: answered rows=1 columns=s:dp
SELECT SUM(wait_days, contribution_bounds_per_group => (-1e9, 1e9)) AS s FROM booking

-- name: negative bounds
-- expect: answered rows=1 columns=s:dp
SELECT SUM(-wait_days, contribution_bounds_per_group => (-30, -1)) AS s FROM booking

-- name: tiny bounds on AVG
-- expect: refused invalid_options "AVG: bounds (1e-300, 2e-300) must be finite, lo < hi, hi - lo at least 1e-9, within ±1e9"
SELECT AVG(wait_days, contribution_bounds_per_group => (1e-300, 2e-300)) AS a FROM booking

-- name: tiny bounds on SUM
-- expect: refused invalid_options "hi - lo at least 1e-9"
SELECT SUM(wait_days, contribution_bounds_per_group => (0, 1e-300)) AS s FROM booking

-- name: tiny bounds on VAR_POP
-- expect: refused invalid_options "hi - lo at least 1e-9"
SELECT VAR_POP(wait_days, contribution_bounds_per_group => (0, 5e-324)) AS v FROM booking

-- name: tiny bounds on STDDEV_SAMP
-- expect: refused invalid_options "hi - lo at least 1e-9"
SELECT STDDEV_SAMP(wait_days, contribution_bounds_per_group => (1e-200, 1e-199)) AS v FROM booking

-- name: tiny bounds on MEDIAN
-- expect: refused invalid_options "hi - lo at least 1e-9"
SELECT MEDIAN(wait_days, contribution_bounds_per_group => (0, 1e-300)) AS m FROM booking

-- name: tiny bounds given in the request
-- request: bounds=v:0:1e-200
-- expect: refused invalid_options "bounds for v must be finite, lo < hi, hi - lo at least 1e-9, within ±1e9"
SELECT VAR_SAMP(wait_days) AS v FROM booking

-- name: narrow bounds that are still meaningful
-- expect: answered rows=1 columns=v:dp
SELECT VAR_POP(wait_days, contribution_bounds_per_group => (0, 1e-6)) AS v FROM booking

-- name: bounds far from zero for a variance
-- expect: answered rows=1 columns=v:dp
SELECT VAR_POP(wait_days, contribution_bounds_per_group => (999999990, 1e9)) AS v FROM booking

-- name: hex bounds
-- expect: refused sql_rejected "syntax error at or near \"x0\""
SELECT SUM(wait_days, contribution_bounds_per_group => (0x0, 0x10)) AS s FROM booking

-- name: bounds with three numbers
-- expect: refused sql_rejected "contribution_bounds_per_group => (lo, hi) takes two numbers"
SELECT SUM(wait_days, contribution_bounds_per_group => (0, 1, 2)) FROM booking

-- name: bounds as one number
-- expect: refused sql_rejected "contribution_bounds_per_group => (lo, hi) takes two numbers"
SELECT SUM(wait_days, contribution_bounds_per_group => 10) FROM booking

-- name: bounds from a column
-- expect: refused sql_rejected "contribution bounds must be number constants"
SELECT SUM(wait_days, contribution_bounds_per_group => (0, wait_days)) FROM booking

-- name: bounds as an expression
-- expect: refused sql_rejected "contribution bounds must be number constants"
SELECT SUM(wait_days, contribution_bounds_per_group => (0, 5 * 2)) FROM booking

-- name: bounds as strings
-- expect: refused sql_rejected "contribution bounds must be number constants"
SELECT SUM(wait_days, contribution_bounds_per_group => ('0', '10')) FROM booking

-- name: bounds given twice
-- expect: refused sql_rejected "contribution_bounds_per_group given twice"
SELECT SUM(wait_days, contribution_bounds_per_group => (0, 10), contribution_bounds_per_group => (0, 1e9)) FROM booking

-- name: bounds with a Cyrillic o in the name
-- expect: refused sql_rejected "unknown named argument contributiоn_bounds_per_group"
SELECT SUM(wait_days, contributiоn_bounds_per_group => (0, 10)) FROM booking

-- name: bounds under another name
-- expect: refused sql_rejected "unknown named argument bounds (contribution_bounds_per_group => (lo, hi) is the only one)"
SELECT SUM(wait_days, bounds => (0, 10)) FROM booking

-- name: bounds name in upper case with :=
-- expect: answered rows=1 columns=s:dp
SELECT SUM(wait_days, CONTRIBUTION_BOUNDS_PER_GROUP := (0, 30)) AS s FROM booking

-- name: bounds on COUNT(column)
-- expect: refused invalid_options "counts take no bounds"
SELECT COUNT(wait_days, contribution_bounds_per_group => (0, 1)) AS n FROM booking

-- name: bounds with a comment inside
-- expect: answered rows=1 columns=s:dp
SELECT SUM(wait_days, contribution_bounds_per_group => (0 /* lo */, /* hi */ 30)) AS s FROM booking

-- name: quantile rank NaN
-- expect: refused sql_rejected "the quantile must be a constant between 0 and 1"
SELECT quantile_cont(wait_days, CAST('NaN' AS DOUBLE)) FROM booking

-- name: quantile rank above one
-- expect: refused sql_rejected "the quantile must be a constant between 0 and 1"
SELECT quantile_cont(wait_days, 1.5) FROM booking

-- name: quantile rank negative
-- expect: refused sql_rejected "the quantile must be a constant between 0 and 1"
SELECT percentile_cont(-0.1) WITHIN GROUP (ORDER BY wait_days) FROM booking

-- name: quantile rank from a column
-- expect: refused sql_rejected "the quantile must be a constant between 0 and 1"
SELECT quantile_cont(wait_days, wait_days) FROM booking

-- name: quantile ranks as a list
-- expect: refused sql_rejected "list literals ([1, 2]) are not supported" at=33
SELECT quantile_cont(wait_days, [0.1, 0.9]) FROM booking

-- name: quantile rank tiny
-- expect: answered rows=1 columns=q:dp
SELECT quantile_cont(wait_days, 1e-300) AS q FROM booking

-- name: request bounds beyond the allowed range
-- request: bounds=w:0:1e300
-- expect: refused invalid_options "bounds for w must be finite"
SELECT AVG(wait_days) AS w FROM booking

-- name: request bounds on a count
-- request: bounds=n:0:10
-- expect: refused invalid_options "bounds for n: counts take no bounds"
SELECT COUNT(*) AS n FROM booking

-- name: bounds on COUNT(DISTINCT pid)
-- expect: refused invalid_options "counts take no bounds"
SELECT COUNT(DISTINCT pid, contribution_bounds_per_group => (0, 1)) AS n FROM booking

-- name: clamp_to_range takes true or false
-- expect: refused invalid_options "option clamp_to_range: \"yes\" is not true or false" at=7
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(clamp_to_range = yes) COUNT(*) AS n FROM booking

-- name: clamp_to_range in the clause
-- expect: answered rows=1 columns=n:dp
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(clamp_to_range = TRUE) COUNT(*) AS n FROM booking
