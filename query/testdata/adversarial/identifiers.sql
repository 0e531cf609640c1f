Identifier leaks: pid (the privacy unit) and the re-keyed ids (booking_key, rx_key,
doc_key) must never reach an output, a key, a filter or an expression, whatever function
wraps them; only COUNT(DISTINCT pid) may name pid (it counts people). Aggregates that are
not differentially private (MIN, MAX, LIST, FIRST, ...) release values of single rows and
are refused over any column.

-- name: pid as a key
-- expect: refused sql_rejected "pid is an identifier"
SELECT pid, COUNT(*) FROM booking GROUP BY pid

-- name: pid in GROUP BY only
-- expect: refused sql_rejected "pid is an identifier"
SELECT COUNT(*) FROM booking GROUP BY pid

-- name: pid as an extra, unselected key
-- expect: refused sql_rejected "pid is an identifier"
SELECT region, COUNT(*) FROM booking GROUP BY region, pid

-- name: qualified pid as a key
-- expect: refused sql_rejected "pid is an identifier"
SELECT b.pid, COUNT(*) FROM booking b GROUP BY b.pid

-- name: quoted upper-case PID
-- expect: refused sql_rejected "pid is an identifier"
SELECT "PID", COUNT(*) FROM booking GROUP BY "PID"

-- name: pid through GROUP BY position
-- expect: refused sql_rejected "pid is an identifier"
SELECT pid, COUNT(*) FROM booking GROUP BY 1

-- name: pid under the alias of a groupable column
-- expect: refused sql_rejected "pid is an identifier"
SELECT CAST(pid AS VARCHAR) AS region, COUNT(*) FROM booking GROUP BY region

-- name: region aliased as pid, grouped by pid
-- expect: refused sql_rejected "pid is an identifier"
SELECT region AS pid, COUNT(*) FROM booking GROUP BY pid

-- name: pid in WHERE equality
-- expect: refused sql_rejected "pid is an identifier"
SELECT COUNT(*) FROM booking WHERE pid = '6f1c1c0e-0000-4000-8000-000000000000'

-- name: pid in WHERE IN list
-- expect: refused sql_rejected "pid is an identifier"
SELECT COUNT(*) FROM booking WHERE pid IN ('6f1c1c0e-0000-4000-8000-000000000000', '00000000-0000-0000-0000-000000000000')

-- name: pid range scan in WHERE
-- expect: refused sql_rejected "pid is an identifier"
SELECT COUNT(*) FROM booking WHERE pid < '80000000-0000-0000-0000-000000000000'

-- name: pid IS NOT NULL
-- expect: refused sql_rejected "pid is an identifier"
SELECT COUNT(*) FROM booking WHERE pid IS NOT NULL

-- name: pid compared with itself
-- expect: refused sql_rejected "pid is an identifier"
SELECT COUNT(*) FROM booking WHERE pid = pid

-- name: pid in a CASE key
-- expect: refused sql_rejected "pid is an identifier"
SELECT CASE WHEN pid < '80000000-0000-0000-0000-000000000000' THEN 'low' ELSE 'high' END AS half, COUNT(*) FROM booking GROUP BY half

-- name: pid in a CASE inside SUM
-- expect: refused sql_rejected "pid is an identifier"
SELECT SUM(CASE WHEN pid = '6f1c1c0e-0000-4000-8000-000000000000' THEN 1 ELSE 0 END) AS hit FROM booking

-- name: pid in a CASE inside COUNT
-- expect: refused sql_rejected "pid is an identifier"
SELECT COUNT(CASE WHEN pid > '8' THEN 1 END) AS n FROM booking

-- name: first character of pid as a key
-- expect: refused sql_rejected "pid is an identifier"
SELECT substring(CAST(pid AS VARCHAR), 1, 1) AS c, COUNT(*) FROM booking GROUP BY c

-- name: left of pid cast with ::
-- expect: refused sql_rejected "pid is an identifier"
SELECT left(pid::VARCHAR, 2) AS c, COUNT(*) FROM booking GROUP BY c

-- name: lower(pid) in WHERE
-- expect: refused sql_rejected "pid is an identifier"
SELECT COUNT(*) FROM booking WHERE lower(CAST(pid AS VARCHAR)) LIKE 'a%'

-- name: length of pid
-- expect: refused sql_rejected "pid is an identifier"
SELECT AVG(length(CAST(pid AS VARCHAR))) AS l FROM booking

-- name: starts_with over pid
-- expect: refused sql_rejected "pid is an identifier"
SELECT COUNT(*) FROM booking WHERE starts_with(CAST(pid AS VARCHAR), '0')

-- name: hash(pid) bucket as a key
-- expect: refused sql_rejected "is not allowed"
SELECT hash(pid) % 2 AS bucket, COUNT(*) FROM booking GROUP BY bucket

-- name: md5 of pid
-- expect: refused sql_rejected "is not allowed"
SELECT md5(CAST(pid AS VARCHAR)) AS h, COUNT(*) FROM booking GROUP BY h

-- name: hash of a non-identifier is still not allowed
-- expect: refused sql_rejected "function hash is not allowed"
SELECT hash(region) % 2 AS bucket, COUNT(*) FROM booking GROUP BY bucket

-- name: md5 of a non-identifier
-- expect: refused sql_rejected "function md5 is not allowed"
SELECT COUNT(*) FROM booking WHERE md5(region) = 'x'

-- name: pid cast to a number
-- expect: refused sql_rejected "pid is an identifier"
SELECT SUM(CAST(pid AS BIGINT)) AS s FROM booking

-- name: pid cast to double inside AVG with bounds
-- expect: refused sql_rejected "pid is an identifier"
SELECT AVG(CAST(pid AS DOUBLE), contribution_bounds_per_group => (0, 1)) AS a FROM booking

-- name: SUM(pid)
-- expect: refused sql_rejected "pid is an identifier"
SELECT SUM(pid) FROM booking

-- name: MEDIAN(pid)
-- expect: refused sql_rejected "pid is an identifier"
SELECT MEDIAN(pid) FROM booking

-- name: quantile over pid
-- expect: refused sql_rejected "pid is an identifier"
SELECT quantile_cont(pid, 0.5) FROM booking

-- name: COUNT(pid) counts rows, not people
-- expect: refused sql_rejected "COUNT(pid) counts rows: use COUNT(*) for rows or COUNT(DISTINCT pid) for people"
SELECT COUNT(pid) FROM booking

-- name: pid in ORDER BY
-- expect: refused sql_rejected "pid is an identifier"
SELECT region, COUNT(*) FROM booking GROUP BY region ORDER BY pid

-- name: hash(pid) in ORDER BY
-- expect: refused sql_rejected "is not allowed"
SELECT region, COUNT(*) FROM booking GROUP BY region ORDER BY hash(pid)

-- name: pid in HAVING
-- expect: refused sql_rejected "pid is an identifier"
SELECT region, COUNT(*) FROM booking GROUP BY region HAVING pid IS NOT NULL

-- name: pid in COUNT FILTER
-- expect: refused sql_rejected "FILTER is not supported"
SELECT COUNT(*) FILTER (WHERE pid > '8') AS n FROM booking

-- name: unqualified pid after USING
-- expect: refused sql_rejected "pid is an identifier"
SELECT pid, COUNT(*) FROM booking JOIN person USING (pid) GROUP BY pid

-- name: joined table's pid as a key
-- expect: refused sql_rejected "pid is an identifier"
SELECT p.pid, COUNT(*) FROM booking b JOIN person p ON b.pid = p.pid GROUP BY p.pid

-- name: struct-style field access to pid
-- expect: refused sql_rejected "pid is an identifier"
SELECT COUNT(*) FROM booking WHERE booking.pid IS NULL

-- name: booking_key as a key
-- expect: refused sql_rejected "booking_key is an identifier"
SELECT booking_key, COUNT(*) FROM booking GROUP BY booking_key

-- name: rx_key prefix in WHERE
-- expect: refused sql_rejected "rx_key is an identifier"
SELECT COUNT(*) FROM booking WHERE rx_key LIKE 'A%'

-- name: length of rx_key
-- expect: refused sql_rejected "rx_key is an identifier"
SELECT SUM(length(rx_key)) FROM booking

-- name: COUNT(booking_key)
-- expect: refused sql_rejected "booking_key is an identifier"
SELECT COUNT(booking_key) FROM booking

-- name: doc_key of a fact table as a key
-- expect: refused sql_rejected "doc_key is an identifier"
SELECT doc_key, COUNT(*) FROM diagnosis GROUP BY doc_key

-- name: doc_key IS NULL splits facts by provenance
-- expect: refused sql_rejected "doc_key is an identifier"
SELECT COUNT(*) FROM diagnosis WHERE doc_key IS NULL

-- name: COUNT(DISTINCT booking_key)
-- expect: refused sql_rejected "COUNT(DISTINCT ...) is supported for pid only (people)"
SELECT COUNT(DISTINCT booking_key) FROM booking

-- name: COUNT(DISTINCT region)
-- expect: refused sql_rejected "COUNT(DISTINCT ...) is supported for pid only"
SELECT COUNT(DISTINCT region) FROM booking

-- name: COUNT(DISTINCT wait_days) per provider
-- expect: refused sql_rejected "COUNT(DISTINCT ...) is supported for pid only"
SELECT region, COUNT(DISTINCT wait_days) FROM booking GROUP BY region

-- name: COUNT(DISTINCT pid, region)
-- expect: refused sql_rejected "COUNT takes one argument"
SELECT COUNT(DISTINCT pid, region) FROM booking

-- name: COUNT(DISTINCT expression over pid)
-- expect: refused sql_rejected "COUNT(DISTINCT ...) is supported for pid only"
SELECT COUNT(DISTINCT CAST(pid AS VARCHAR)) FROM booking

-- name: SUM(DISTINCT wait_days)
-- expect: refused sql_rejected "DISTINCT inside SUM is not supported"
SELECT SUM(DISTINCT wait_days) FROM booking

-- name: AVG(DISTINCT wait_days)
-- expect: refused sql_rejected "DISTINCT inside AVG is not supported"
SELECT AVG(DISTINCT wait_days) FROM booking

-- name: MIN over a number
-- expect: refused sql_rejected "MIN is not a differentially private aggregate"
SELECT MIN(wait_days) FROM booking

-- name: MAX over a date per region
-- expect: refused sql_rejected "MAX is not a differentially private aggregate"
SELECT region, MAX(d_contact) FROM booking GROUP BY region

-- name: MIN over pid
-- expect: refused sql_rejected "MIN is not a differentially private aggregate"
SELECT MIN(pid) FROM booking

-- name: LIST of pids
-- expect: refused sql_rejected "LIST is not a differentially private aggregate"
SELECT region, list(pid) FROM booking GROUP BY region

-- name: array_agg of waits
-- expect: refused sql_rejected "ARRAY_AGG is not a differentially private aggregate"
SELECT array_agg(wait_days) FROM booking

-- name: string_agg of providers
-- expect: refused sql_rejected "STRING_AGG is not a differentially private aggregate"
SELECT string_agg(provider_id, ',') FROM booking

-- name: group_concat
-- expect: refused sql_rejected "GROUP_CONCAT is not a differentially private aggregate"
SELECT group_concat(provider_id) FROM booking

-- name: first
-- expect: refused sql_rejected "FIRST is not a differentially private aggregate"
SELECT region, first(wait_days) FROM booking GROUP BY region

-- name: last
-- expect: refused sql_rejected "LAST is not a differentially private aggregate"
SELECT last(provider_id) FROM booking

-- name: any_value
-- expect: refused sql_rejected "ANY_VALUE is not a differentially private aggregate"
SELECT any_value(provider_id) FROM booking

-- name: arbitrary (an alias of first)
-- expect: refused sql_rejected "function arbitrary is not allowed"
SELECT arbitrary(provider_id) FROM booking

-- name: arg_max releases the row of the longest wait
-- expect: refused sql_rejected "ARG_MAX is not a differentially private aggregate"
SELECT arg_max(provider_id, wait_days) FROM booking

-- name: arg_min over pid
-- expect: refused sql_rejected "ARG_MIN is not a differentially private aggregate"
SELECT arg_min(pid, wait_days) FROM booking

-- name: max_by
-- expect: refused sql_rejected "MAX_BY is not a differentially private aggregate"
SELECT max_by(region, wait_days) FROM booking

-- name: mode
-- expect: refused sql_rejected "MODE is not a differentially private aggregate"
SELECT mode(provider_id) FROM booking

-- name: histogram
-- expect: refused sql_rejected "HISTOGRAM is not a differentially private aggregate"
SELECT histogram(wait_days) FROM booking

-- name: approx_count_distinct(pid)
-- expect: refused sql_rejected "APPROX_COUNT_DISTINCT is not a differentially private aggregate"
SELECT approx_count_distinct(pid) FROM booking

-- name: quantile_disc releases a data value
-- expect: refused sql_rejected "QUANTILE_DISC is not a differentially private aggregate"
SELECT quantile_disc(wait_days, 0.5) FROM booking

-- name: count_if
-- expect: refused sql_rejected "COUNT_IF is not a differentially private aggregate"
SELECT count_if(wait_days > 100) FROM booking

-- name: bool_or
-- expect: refused sql_rejected "BOOL_OR is not a differentially private aggregate"
SELECT region, bool_or(wait_days > 300) FROM booking GROUP BY region

-- name: product
-- expect: refused sql_rejected "PRODUCT is not a differentially private aggregate"
SELECT product(wait_days) FROM booking

-- name: json_group_array
-- expect: refused sql_rejected "JSON_GROUP_ARRAY is not a differentially private aggregate"
SELECT json_group_array(provider_id) FROM booking

-- name: listagg
-- expect: refused sql_rejected "function listagg is not allowed"
SELECT listagg(provider_id) FROM booking

-- name: geometric mean
-- expect: refused sql_rejected "function geomean is not allowed"
SELECT geomean(wait_days) FROM booking

-- name: weighted average
-- expect: refused sql_rejected "function weighted_avg is not allowed"
SELECT weighted_avg(wait_days, wait_days) FROM booking

-- name: sem
-- expect: refused sql_rejected "function sem is not allowed"
SELECT sem(wait_days) FROM booking

-- name: a count named pid is only a count
-- expect: answered rows=1 columns=pid:dp
SELECT COUNT(*) AS pid FROM booking

-- name: COUNT(DISTINCT b.pid) in a join counts people
-- expect: answered rows=2 columns=sex:key|people:dp
SELECT p.sex, COUNT(DISTINCT b.pid) AS people FROM booking b JOIN person p ON b.pid = p.pid GROUP BY p.sex

-- name: COUNT(DISTINCT pid) of an alias that is not in the query
-- expect: refused sql_rejected "unknown table or alias zzz"
SELECT COUNT(DISTINCT zzz.pid) AS n FROM booking

-- name: COUNT(DISTINCT pid) through a catalog-qualified name
-- expect: refused sql_rejected "column reference memory.booking.pid is not supported"
SELECT COUNT(DISTINCT memory.booking.pid) AS n FROM booking

-- name: COUNT(DISTINCT pid) of the joined table
-- expect: answered rows=1 columns=people:dp
SELECT COUNT(DISTINCT r.pid) AS people FROM booking b JOIN prescription r USING (pid)
