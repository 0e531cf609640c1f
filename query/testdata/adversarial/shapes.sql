Query shapes outside the allow-list: subqueries, CTEs (recursive too), set operations,
windows, QUALIFY, sampling, ROLLUP/CUBE/GROUPING SETS, GROUP BY ALL, DISTINCT, stars,
PIVOT, unnest, lambdas, macros and prepared parameters. Each is refused with a message
that names the construct.

-- name: scalar subquery in the select list
-- expect: refused sql_rejected "subqueries are not supported"
SELECT region, (SELECT COUNT(*) FROM person) AS n, COUNT(*) FROM booking GROUP BY region

-- name: scalar subquery in WHERE
-- expect: refused sql_rejected "subqueries are not supported"
SELECT COUNT(*) FROM booking WHERE wait_days > (SELECT AVG(wait_days) FROM booking)

-- name: scalar subquery inside an aggregate
-- expect: refused sql_rejected "subqueries are not supported"
SELECT SUM((SELECT 1), contribution_bounds_per_group => (0, 1)) FROM booking

-- name: IN subquery
-- expect: refused sql_rejected "subqueries are not supported"
SELECT COUNT(*) FROM booking WHERE region IN (SELECT region FROM person WHERE birth_year = 1931)

-- name: NOT IN subquery
-- expect: refused sql_rejected "subqueries are not supported"
SELECT COUNT(*) FROM booking WHERE region NOT IN (SELECT region FROM person)

-- name: EXISTS correlated on pid
-- expect: refused sql_rejected "subqueries are not supported"
SELECT COUNT(*) FROM booking b WHERE EXISTS (SELECT 1 FROM person p WHERE p.pid = b.pid AND p.birth_year = 1931)

-- name: NOT EXISTS
-- expect: refused sql_rejected "subqueries are not supported"
SELECT COUNT(*) FROM booking b WHERE NOT EXISTS (SELECT 1 FROM prescription r WHERE r.pid = b.pid)

-- name: ANY subquery
-- expect: refused sql_rejected "subqueries are not supported"
SELECT COUNT(*) FROM booking WHERE wait_days > ANY (SELECT wait_days FROM booking WHERE region = '120')

-- name: subquery in a CASE key
-- expect: refused sql_rejected "subqueries are not supported"
SELECT CASE WHEN EXISTS (SELECT 1 FROM person) THEN 'y' ELSE 'n' END AS k, COUNT(*) FROM booking GROUP BY k

-- name: subquery in HAVING
-- expect: refused sql_rejected "subqueries are not supported"
SELECT region, COUNT(*) AS n FROM booking GROUP BY region HAVING n > (SELECT 10)

-- name: subquery in FROM
-- expect: refused sql_rejected "subqueries are not supported"
SELECT COUNT(*) FROM (SELECT * FROM booking) b

-- name: subquery in FROM releasing per-person rows
-- expect: refused sql_rejected "subqueries are not supported"
SELECT COUNT(*) FROM (SELECT pid, COUNT(*) AS n FROM booking GROUP BY pid) t

-- name: VALUES as a table
-- expect: refused sql_rejected "not supported"
SELECT COUNT(*) FROM (VALUES (1), (2)) v(x)

-- name: CTE
-- expect: refused sql_rejected "WITH (common table expressions) is not supported"
WITH b AS (SELECT * FROM booking) SELECT COUNT(*) FROM b

-- name: CTE shadowing a table name with a file
-- expect: refused sql_rejected "WITH (common table expressions) is not supported"
WITH booking AS (SELECT * FROM read_parquet('/tmp/fake.parquet')) SELECT COUNT(*) FROM booking

-- name: unused CTE
-- expect: refused sql_rejected "WITH (common table expressions) is not supported"
WITH x AS (SELECT 1) SELECT COUNT(*) FROM booking

-- name: recursive CTE
-- expect: refused sql_rejected "WITH (common table expressions) is not supported"
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000) SELECT COUNT(*) FROM booking

-- name: materialized CTE
-- expect: refused sql_rejected "WITH (common table expressions) is not supported"
WITH b AS MATERIALIZED (SELECT * FROM booking) SELECT COUNT(*) FROM booking

-- name: UNION of two counts
-- expect: refused sql_rejected "set operations (UNION, INTERSECT, EXCEPT) are not supported"
SELECT COUNT(*) FROM booking UNION SELECT COUNT(*) FROM person

-- name: UNION ALL
-- expect: refused sql_rejected "set operations"
SELECT region, COUNT(*) FROM booking GROUP BY region UNION ALL SELECT region, COUNT(*) FROM person GROUP BY region

-- name: UNION BY NAME
-- expect: refused sql_rejected "set operations"
SELECT COUNT(*) AS n FROM booking UNION BY NAME SELECT COUNT(*) AS n FROM person

-- name: INTERSECT
-- expect: refused sql_rejected "set operations"
SELECT region FROM booking INTERSECT SELECT region FROM person

-- name: EXCEPT
-- expect: refused sql_rejected "set operations"
SELECT region FROM booking EXCEPT SELECT region FROM person

-- name: window COUNT over everything
-- expect: refused sql_rejected "window functions are not supported"
SELECT region, COUNT(*) OVER () FROM booking GROUP BY region

-- name: row_number over pid
-- expect: refused sql_rejected "window functions are not supported"
SELECT row_number() OVER (PARTITION BY pid ORDER BY d_contact) AS r, COUNT(*) FROM booking GROUP BY r

-- name: window SUM partitioned by region
-- expect: refused sql_rejected "window functions are not supported"
SELECT SUM(wait_days) OVER (PARTITION BY region) AS s FROM booking

-- name: lag over dates
-- expect: refused sql_rejected "window functions are not supported"
SELECT COUNT(*) FROM booking WHERE lag(wait_days) OVER (ORDER BY d_contact) > 100

-- name: named WINDOW clause
-- expect: refused sql_rejected "window functions are not supported"
SELECT rank() OVER w AS r, COUNT(*) FROM booking GROUP BY r WINDOW w AS (ORDER BY wait_days)

-- name: QUALIFY
-- expect: refused sql_rejected "QUALIFY is not supported"
SELECT region, COUNT(*) FROM booking GROUP BY region QUALIFY row_number() OVER () = 1

-- name: USING SAMPLE percent
-- expect: refused sql_rejected "USING SAMPLE is not supported"
SELECT COUNT(*) FROM booking USING SAMPLE 10%

-- name: USING SAMPLE rows with a seed
-- expect: refused sql_rejected "USING SAMPLE is not supported"
SELECT COUNT(*) FROM booking USING SAMPLE reservoir(1 ROWS) REPEATABLE (42)

-- name: TABLESAMPLE on a table
-- expect: refused sql_rejected "AT and TABLESAMPLE are not supported"
SELECT COUNT(*) FROM booking TABLESAMPLE 1 ROWS

-- name: TABLESAMPLE bernoulli in a join
-- expect: refused sql_rejected "AT and TABLESAMPLE are not supported"
SELECT COUNT(*) FROM booking b JOIN person p TABLESAMPLE bernoulli(50%) ON b.pid = p.pid

-- name: ROLLUP releases each group twice
-- expect: refused sql_rejected "GROUPING SETS, ROLLUP and CUBE are not supported"
SELECT region, COUNT(*) FROM booking GROUP BY ROLLUP (region)

-- name: CUBE
-- expect: refused sql_rejected "GROUPING SETS, ROLLUP and CUBE are not supported"
SELECT region, priority, COUNT(*) FROM booking GROUP BY CUBE (region, priority)

-- name: GROUPING SETS
-- expect: refused sql_rejected "GROUPING SETS, ROLLUP and CUBE are not supported"
SELECT region, priority, COUNT(*) FROM booking GROUP BY GROUPING SETS ((region), (priority), ())

-- name: GROUPING SETS of one set is a plain GROUP BY
-- expect: answered rows=21 columns=region:key|n:dp
SELECT region, COUNT(*) AS n FROM booking GROUP BY GROUPING SETS ((region))

-- name: grouping() function
-- expect: refused sql_rejected "GROUPING() is not supported: Velo has no grouping sets"
SELECT region, grouping(region) AS g, COUNT(*) FROM booking GROUP BY region

-- name: GROUP BY ALL
-- expect: refused sql_rejected "GROUP BY ALL is not supported: name the keys"
SELECT region, COUNT(*) FROM booking GROUP BY ALL

-- name: ORDER BY ALL
-- expect: refused sql_rejected "ORDER BY ALL is not supported: name the output columns"
SELECT region, COUNT(*) AS n FROM booking GROUP BY region ORDER BY ALL

-- name: SELECT DISTINCT of a column
-- expect: refused sql_rejected "provider_id is neither a GROUP BY key nor an aggregate"
SELECT DISTINCT provider_id FROM booking

-- name: SELECT DISTINCT over groups
-- expect: refused sql_rejected "SELECT DISTINCT would release rows: use GROUP BY with an aggregate"
SELECT DISTINCT region, COUNT(*) FROM booking GROUP BY region

-- name: SELECT DISTINCT ON
-- expect: refused sql_rejected "SELECT DISTINCT would release rows"
SELECT DISTINCT ON (region) region, COUNT(*) FROM booking GROUP BY region

-- name: SELECT *
-- expect: refused sql_rejected "SELECT * would release rows: select group keys and aggregates"
SELECT * FROM booking

-- name: SELECT alias.*
-- expect: refused sql_rejected "SELECT * would release rows"
SELECT b.* FROM booking b

-- name: SELECT * EXCLUDE pid
-- expect: refused sql_rejected "SELECT * would release rows"
SELECT * EXCLUDE (pid) FROM booking

-- name: COLUMNS(*)
-- expect: refused sql_rejected "SELECT * would release rows"
SELECT COLUMNS(*) FROM booking

-- name: COLUMNS with a regular expression
-- expect: refused sql_rejected "SELECT * would release rows"
SELECT COLUMNS('.*_key') FROM booking

-- name: COUNT over COLUMNS(*)
-- expect: refused sql_rejected "is not allowed here"
SELECT COUNT(COLUMNS(*)) FROM booking

-- name: FROM-first without SELECT is SELECT *
-- expect: refused sql_rejected "SELECT * would release rows"
FROM booking

-- name: TABLE shorthand
-- expect: refused sql_rejected "SELECT * would release rows"
TABLE booking

-- name: PIVOT statement
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
PIVOT booking ON region USING COUNT(*)

-- name: PIVOT in FROM
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
SELECT COUNT(*) FROM (PIVOT booking ON priority USING COUNT(*) GROUP BY region)

-- name: UNPIVOT
-- expect: refused sql_rejected "PIVOT and UNPIVOT are not supported"
UNPIVOT booking ON d_contact, d_appointment INTO NAME k VALUE d

-- name: unnest as a key
-- expect: refused sql_rejected "function unnest is not allowed"
SELECT unnest(region) AS x, COUNT(*) FROM booking GROUP BY x

-- name: unnest of a list literal multiplies rows
-- expect: refused sql_rejected "is not allowed"
SELECT unnest([1, 2, 3]) AS x, COUNT(*) FROM booking GROUP BY x

-- name: unnest as a table
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM unnest([1, 2, 3])

-- name: list literal in WHERE
-- expect: refused sql_rejected "list literals ([1, 2]) are not supported: compare with IN (1, 2)"
SELECT COUNT(*) FROM booking WHERE [wait_days] = [1]

-- name: lambda in list_transform
-- expect: refused sql_rejected "is not allowed"
SELECT COUNT(*) FROM booking WHERE apply(wait_days, x -> x + 1) = 2

-- name: lambda with the Python-style syntax
-- expect: refused sql_rejected "is not allowed"
SELECT COUNT(*) FROM booking WHERE apply(wait_days, lambda x: x + 1) = 2

-- name: CREATE MACRO
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
CREATE MACRO leak(x) AS x

-- name: a macro created and used in one request
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
CREATE TEMP MACRO k() AS 1; SELECT k() AS one, COUNT(*) FROM booking GROUP BY one

-- name: calling an unknown function as if it were a macro
-- expect: refused sql_rejected "function leak is not allowed"
SELECT leak(region) AS r, COUNT(*) FROM booking GROUP BY r

-- name: positional parameter
-- expect: refused sql_rejected "query parameters are not supported: write the values"
SELECT COUNT(*) FROM booking WHERE wait_days > ?

-- name: numbered parameter
-- expect: refused sql_rejected "query parameters are not supported"
SELECT COUNT(*) FROM booking WHERE region = $1

-- name: named parameter
-- expect: refused sql_rejected "query parameters are not supported"
SELECT COUNT(*) FROM booking WHERE region = $region

-- name: PREPARE
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
PREPARE q AS SELECT COUNT(*) FROM booking WHERE wait_days > $1

-- name: EXECUTE
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
EXECUTE q(10)

-- name: no FROM clause
-- expect: refused sql_rejected "a FROM clause naming a table is required"
SELECT COUNT(*)

-- name: no aggregate
-- expect: refused sql_rejected "a query must release at least one aggregate"
SELECT region FROM booking GROUP BY region

-- name: bare column without GROUP BY
-- expect: refused sql_rejected "region is neither a GROUP BY key nor an aggregate"
SELECT region, COUNT(*) FROM booking

-- name: aggregate inside arithmetic
-- expect: refused sql_rejected "aggregates must stand alone in the select list"
SELECT COUNT(*) * 100 / 3000 AS pct FROM booking

-- name: nested aggregates
-- expect: refused sql_rejected "aggregate COUNT(*) is not allowed here (only at the top of the select list"
SELECT SUM(COUNT(*)) FROM booking

-- name: aggregate in WHERE
-- expect: refused sql_rejected "is not allowed here (only at the top of the select list"
SELECT COUNT(*) FROM booking WHERE COUNT(*) > 1

-- name: GROUP BY an aggregate
-- expect: refused sql_rejected "cannot GROUP BY an aggregate"
SELECT COUNT(*) FROM booking GROUP BY COUNT(*)

-- name: GROUP BY a constant
-- expect: refused sql_rejected "a GROUP BY key must use a column"
SELECT 'x' AS k, COUNT(*) FROM booking GROUP BY k

-- name: GROUP BY position out of range
-- expect: refused sql_rejected "GROUP BY 3: the select list has 2 items"
SELECT region, COUNT(*) FROM booking GROUP BY 3

-- name: FILTER on an aggregate
-- expect: refused sql_rejected "FILTER is not supported: use CASE inside the aggregate or WHERE"
SELECT COUNT(*) FILTER (WHERE region = '120') AS n FROM booking

-- name: ORDER BY inside SUM
-- expect: refused sql_rejected "ORDER BY inside SUM is not supported"
SELECT SUM(wait_days ORDER BY d_contact) FROM booking

-- name: HAVING on an aggregate that is not released
-- expect: refused sql_rejected "avg(wait_days) is not a released aggregate"
SELECT region, COUNT(*) AS n FROM booking GROUP BY region HAVING AVG(wait_days) > 30

-- name: ORDER BY an aggregate that is not released
-- expect: refused sql_rejected "sum(wait_days) is not a released aggregate"
SELECT region, COUNT(*) AS n FROM booking GROUP BY region ORDER BY SUM(wait_days) DESC LIMIT 1

-- name: ORDER BY a non-key column picks the extreme row
-- expect: refused sql_rejected "wait_days is not an output column of the query"
SELECT region, COUNT(*) AS n FROM booking GROUP BY region ORDER BY wait_days

-- name: ORDER BY random()
-- expect: refused sql_rejected "function random is not allowed"
SELECT region, COUNT(*) AS n FROM booking GROUP BY region ORDER BY random()

-- name: HAVING with a function over a released value
-- expect: refused sql_rejected "abs() of a released value is not supported in HAVING: HAVING may combine output columns (by name or alias), released aggregates and constants with + - * /" at=65
SELECT region, COUNT(*) AS n FROM booking GROUP BY region HAVING abs(n) > 10

-- name: LIMIT by a subquery
-- expect: refused sql_rejected "LIMIT must be a constant"
SELECT region, COUNT(*) AS n FROM booking GROUP BY region LIMIT (SELECT 1)

-- name: LIMIT percent
-- expect: refused sql_rejected "not supported"
SELECT region, COUNT(*) AS n FROM booking GROUP BY region LIMIT 10%

-- name: negative LIMIT
-- expect: refused sql_rejected "LIMIT must be a non-negative integer"
SELECT region, COUNT(*) AS n FROM booking GROUP BY region LIMIT -1

-- name: COLLATE on a key
-- expect: refused sql_rejected "not supported"
SELECT region COLLATE nocase AS r, COUNT(*) FROM booking GROUP BY r

-- name: positional column reference
-- expect: refused sql_rejected "not supported"
SELECT region, COUNT(*) FROM booking GROUP BY #1

-- name: struct literal
-- expect: refused sql_rejected "struct literals ({'k': v}) are not supported" at=36
SELECT COUNT(*) FROM booking WHERE {'r': region} = {'r': '120'}

-- name: SIMILAR TO compiles a regular expression
-- expect: refused sql_rejected "regular expressions (SIMILAR TO, ~, regexp_full_match) are not supported: use LIKE"
SELECT COUNT(*) FROM booking WHERE provider_id SIMILAR TO '12.*'

-- name: GLOB operator
-- expect: refused sql_rejected "GLOB is not supported: use LIKE, where % matches any text and _ one character" at=47
SELECT COUNT(*) FROM booking WHERE provider_id GLOB '12*'

-- name: LIKE with a column as pattern
-- expect: refused sql_rejected "LIKE patterns must be string constants"
SELECT COUNT(*) FROM booking WHERE provider_id LIKE region

-- name: two output columns with the same name
-- expect: refused sql_rejected "two output columns are named n: give one an alias"
SELECT COUNT(*) AS n, SUM(wait_days) AS n FROM booking

-- name: INTERVAL arithmetic
-- expect: refused sql_rejected "intervals (INTERVAL 30 DAY, INTERVAL '1 month') are not supported: add a number of days to a date (d_contact + 30) or compare dates with date_diff('day', d_contact, d_appointment) > 30" at=47
SELECT COUNT(*) FROM booking WHERE d_contact + INTERVAL 1 DAY > '2024-06-01'

-- name: two unnamed counts have the same name
-- expect: refused sql_rejected "two output columns are named count(*): give one an alias"
SELECT COUNT(*), COUNT(*) FROM booking

-- name: an alias shadowing a column is not the key GROUP BY names
-- expect: refused sql_rejected "is neither a GROUP BY key nor an aggregate"
SELECT CASE WHEN wait_days > 30 THEN 'x' ELSE 'y' END AS region, COUNT(*) FROM booking GROUP BY region

-- name: HAVING on a different quantile than the one released
-- expect: refused sql_rejected "quantile_cont(wait_days, 0.9) is not a released aggregate"
SELECT priority, MEDIAN(wait_days) AS m FROM booking GROUP BY priority HAVING quantile_cont(wait_days, 0.9) > 10
