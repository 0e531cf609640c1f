Resource abuse: huge IN lists, deep nesting, megabytes of SQL, thousands of aggregates
or keys, enormous enumerations of public domains. Each is refused before any data is
read, or answered with work bounded by the query's text. Generators ({{repeat}} and
{{seq}}) build the huge queries at run time.

-- name: 10 MB of SQL in a comment
-- expect: refused sql_rejected "query longer than 64 KiB"
SELECT COUNT(*) FROM booking -- {{repeat 10485760 "x"}}

-- name: 10 MB string literal
-- expect: refused sql_rejected "query longer than 64 KiB"
SELECT COUNT(*) FROM booking WHERE region = '{{repeat 10485760 "1"}}'

-- name: 10 MB of whitespace
-- expect: refused sql_rejected "query longer than 64 KiB"
SELECT COUNT(*) FROM booking{{repeat 10485760 " "}}

-- name: just over 64 KiB
-- expect: refused sql_rejected "query longer than 64 KiB"
SELECT COUNT(*) AS n FROM booking WHERE region <> '{{repeat 65536 "a"}}'

-- name: a string literal just under 64 KiB
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE region <> '{{repeat 65000 "a"}}'

-- name: an identifier just under 64 KiB
-- expect: refused sql_rejected "unknown column"
SELECT COUNT(*) AS n FROM booking WHERE {{repeat 65000 "a"}} = 1

-- name: empty query
-- expect: refused sql_rejected "empty query"
{{repeat 1000 "  "}}

-- name: only a comment
-- expect: refused sql_rejected "exactly one SELECT statement is allowed, got 0"
-- nothing but a comment

-- name: only semicolons
-- expect: refused sql_rejected "exactly one SELECT statement is allowed, got 0"
;;;;

-- name: a NUL byte hides a second statement from the parser
-- expect: refused sql_rejected "the query contains a NUL byte" at=54
SELECT COUNT(*) AS n FROM booking WHERE region = '120'{{"\x00"}}; COPY booking TO '/tmp/x.csv'

-- name: invalid UTF-8
-- expect: refused sql_rejected "the query is not valid UTF-8"
SELECT COUNT(*) AS n FROM booking WHERE region = '{{"\xff\xfe"}}'

-- name: an IN list of 3000 numbers
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE wait_days IN ({{seq 3000 "%d" ","}})

-- name: an IN list of 2000 strings on a public key narrows its domain
-- expect: answered rows=2 columns=region:key|n:dp
SELECT region, COUNT(*) AS n FROM booking WHERE region IN ('120', '030', {{seq 2000 "'x%d'" ", "}}) GROUP BY region

-- name: 500 ORed comparisons
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE {{seq 500 "wait_days = %d" " OR "}}

-- name: 500 ANDed comparisons
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE {{seq 500 "wait_days <> %d" " AND "}}

-- name: a CASE with 500 branches
-- expect: answered rows=1 columns=a:dp
SELECT AVG(CASE {{seq 500 "WHEN wait_days = %d THEN %d" " "}} ELSE 0 END) AS a FROM booking

-- name: a CASE key with 400 results
-- expect: answered rows=400 columns=k:key|n:dp
SELECT CASE {{seq 400 "WHEN wait_days = %d THEN %d" " "}} END AS k, COUNT(*) AS n FROM booking GROUP BY k

-- name: 100 nested parentheses
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE {{repeat 100 "("}}wait_days > 1{{repeat 100 ")"}}

-- name: 3000 nested parentheses are only grouping
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE {{repeat 3000 "("}}wait_days > 1{{repeat 3000 ")"}}

-- name: 30000 nested parentheses
-- expect: refused sql_rejected "expressions nested too deeply (at most 100 levels)"
SELECT COUNT(*) AS n FROM booking WHERE {{repeat 30000 "("}}wait_days > 1{{repeat 30000 ")"}}

-- name: 50 nested CASEs
-- expect: answered rows=1 columns=a:dp
SELECT AVG({{repeat 50 "CASE WHEN wait_days > 1 THEN "}}1{{repeat 50 " ELSE 0 END"}}) AS a FROM booking

-- name: 1000 nested CASEs
-- expect: refused sql_rejected "expressions nested too deeply (at most 100 levels)"
SELECT AVG({{repeat 1000 "CASE WHEN wait_days > 1 THEN "}}1{{repeat 1000 " ELSE 0 END"}}) AS a FROM booking

-- name: 1000 nested NOTs
-- expect: refused sql_rejected "nested too deeply"
SELECT COUNT(*) AS n FROM booking WHERE {{repeat 1000 "NOT "}}wait_days > 1

-- name: 500 nested function calls
-- expect: refused sql_rejected "expressions nested too deeply (at most 100 levels)"
SELECT COUNT(*) AS n FROM booking WHERE {{repeat 500 "abs("}}wait_days{{repeat 500 ")"}} > 1

-- name: a chain of 5000 additions
-- expect: refused sql_rejected "nested too deeply"
SELECT COUNT(*) AS n FROM booking WHERE wait_days{{repeat 5000 " + 1"}} > 1

-- name: 150 nested CASEs
-- expect: refused sql_rejected "expressions nested too deeply (at most 100 levels)"
SELECT AVG({{repeat 150 "CASE WHEN wait_days > 1 THEN "}}1{{repeat 150 " ELSE 0 END"}}) AS a FROM booking

-- name: 90 nested function calls
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE {{repeat 90 "abs("}}wait_days{{repeat 90 ")"}} > 1

-- name: a chain of 90 additions
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE wait_days{{repeat 90 " + 1"}} > 1

-- name: 17 aggregates
-- expect: refused sql_rejected "at most 16 aggregates per query"
SELECT {{seq 17 "COUNT(*) AS c%d" ", "}} FROM booking

-- name: 1000 aggregates
-- expect: refused sql_rejected "at most 16 aggregates per query"
SELECT {{seq 1000 "COUNT(*) AS c%d" ", "}} FROM booking

-- name: 3000 aggregates
-- expect: refused sql_rejected "query longer than 64 KiB"
SELECT {{seq 3000 "SUM(wait_days) AS s%d" ", "}} FROM booking

-- name: 16 quantiles
-- expect: answered rows=4 columns=priority:key|q0:dp|q1:dp|q2:dp|q3:dp|q4:dp|q5:dp|q6:dp|q7:dp|q8:dp|q9:dp|q10:dp|q11:dp|q12:dp|q13:dp|q14:dp|q15:dp
SELECT priority, {{seq 16 "quantile_cont(wait_days, 0.0%d) AS q%d" ", "}} FROM booking GROUP BY priority

-- name: 16 variances over 24 months
-- expect: answered rows=24 columns=m:key|v0:dp|v1:dp|v2:dp|v3:dp|v4:dp|v5:dp|v6:dp|v7:dp|v8:dp|v9:dp|v10:dp|v11:dp|v12:dp|v13:dp|v14:dp|v15:dp
SELECT date_trunc('month', d_contact) AS m, {{seq 16 "VAR_SAMP(wait_days + %d) AS v%d" ", "}} FROM booking GROUP BY m

-- name: 5 keys
-- expect: refused sql_rejected "at most 4 GROUP BY keys"
SELECT region, priority, channel, status, garanzia, COUNT(*) FROM booking GROUP BY region, priority, channel, status, garanzia

-- name: 200 keys
-- expect: refused sql_rejected "at most 4 GROUP BY keys"
SELECT COUNT(*) FROM booking GROUP BY {{seq 200 "wait_days > %d" ", "}}

-- name: 200 copies of one key count once
-- expect: answered rows=21 columns=region:key|n:dp
SELECT region, COUNT(*) AS n FROM booking GROUP BY {{repeat 199 "region, "}}region

-- name: days by region by priority is too many groups
-- expect: refused sql_rejected "the GROUP BY keys' public domains have more than 10000 combinations: group more coarsely"
SELECT d_contact, region, priority, COUNT(*) FROM booking GROUP BY d_contact, region, priority

-- name: two CASE keys of 200 results each
-- expect: refused sql_rejected "more than 10000 combinations"
SELECT CASE {{seq 200 "WHEN wait_days = %d THEN %d" " "}} END AS a, CASE {{seq 200 "WHEN wait_days = %d THEN 'v%d'" " "}} END AS b, COUNT(*) FROM booking GROUP BY a, b

-- name: four public keys
-- expect: answered rows=336 columns=m:key|d:key|q:key|w:key|n:dp
SELECT month(d_contact) AS m, isodow(d_contact) AS d, region IN ('120', '030', '150', '010') AS q, service_kind AS w, COUNT(*) AS n FROM booking GROUP BY m, d, q, w

-- name: public keys just under the enumeration limit
-- expect: answered rows=8820 columns=w:key|region:key|priority:key|n:dp
SELECT date_trunc('week', d_contact) AS w, region, priority, COUNT(*) AS n FROM booking GROUP BY w, region, priority

-- name: every day of the period
-- expect: answered rows=731 columns=d:key|n:dp
SELECT d_contact AS d, COUNT(*) AS n FROM booking GROUP BY d

-- name: every day of the period by priority
-- expect: answered rows=2924 columns=d:key|priority:key|n:dp
SELECT date_trunc('day', d_contact) AS d, priority, COUNT(*) AS n FROM booking GROUP BY d, priority

-- name: a CASE key without ELSE releases only its results
-- expect: answered rows=2 columns=k:key|n:dp
SELECT CASE WHEN wait_days < 10 THEN 'short' WHEN wait_days < 60 THEN 'medium' END AS k, COUNT(*) AS n FROM booking GROUP BY k

-- name: LIMIT larger than any release
-- expect: answered rows=21 columns=region:key|n:dp
SELECT region, COUNT(*) AS n FROM booking GROUP BY region LIMIT 9223372036854775807

-- name: OFFSET larger than any release
-- expect: answered rows=0 columns=region:key|n:dp
SELECT region, COUNT(*) AS n FROM booking GROUP BY region LIMIT 10 OFFSET 9223372036854775807

-- name: a pathological LIKE pattern
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE provider_id LIKE '{{repeat 2000 "%a"}}%b'

-- name: three-way self-join on pid is bounded by truncation
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking b1 JOIN booking b2 ON b1.pid = b2.pid JOIN booking b3 ON b2.pid = b3.pid
