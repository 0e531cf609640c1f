Joins. Only INNER joins that equate the pid of one side with the pid of the other
(ON a.pid = b.pid or USING (pid)) are allowed, over at most three approved tables: any
other shape can multiply a person's rows without bound or relate different people.
The synthetic dataset's person table is empty, so joins with it release empty groups.

-- name: LEFT JOIN keeps people without a match
-- expect: refused sql_rejected "LEFT JOIN is not supported: only INNER JOIN on pid (JOIN b USING (pid))"
SELECT COUNT(*) FROM booking b LEFT JOIN person p USING (pid)

-- name: RIGHT JOIN
-- expect: refused sql_rejected "is not supported: only INNER JOIN on pid (JOIN b USING (pid))"
SELECT COUNT(*) FROM booking b RIGHT JOIN person p ON b.pid = p.pid

-- name: FULL OUTER JOIN
-- expect: refused sql_rejected "is not supported: only INNER JOIN on pid (JOIN b USING (pid))"
SELECT COUNT(*) FROM booking b FULL OUTER JOIN person p ON b.pid = p.pid

-- name: CROSS JOIN multiplies every row
-- expect: refused sql_rejected "is not supported: only INNER JOIN on pid (JOIN b USING (pid))"
SELECT COUNT(*) FROM booking CROSS JOIN person

-- name: NATURAL JOIN joins on every shared column
-- expect: refused sql_rejected "is not supported: only INNER JOIN on pid (JOIN b USING (pid))"
SELECT COUNT(*) FROM booking NATURAL JOIN prescription

-- name: ASOF JOIN
-- expect: refused sql_rejected "is not supported: only INNER JOIN on pid (JOIN b USING (pid))"
SELECT COUNT(*) FROM booking b ASOF JOIN prescription r ON b.pid = r.pid AND b.d_contact >= r.authored_date

-- name: POSITIONAL JOIN pairs rows of different people
-- expect: refused sql_rejected "is not supported: only INNER JOIN on pid (JOIN b USING (pid))"
SELECT COUNT(*) FROM booking POSITIONAL JOIN person

-- name: SEMI JOIN
-- expect: refused sql_rejected "is not supported: only INNER JOIN on pid (JOIN b USING (pid))"
SELECT COUNT(*) FROM booking b SEMI JOIN person p ON b.pid = p.pid

-- name: ANTI JOIN
-- expect: refused sql_rejected "is not supported: only INNER JOIN on pid (JOIN b USING (pid))"
SELECT COUNT(*) FROM booking b ANTI JOIN person p ON b.pid = p.pid

-- name: LATERAL subquery
-- expect: refused sql_rejected "is not supported: only INNER JOIN on pid (JOIN b USING (pid))"
SELECT COUNT(*) FROM booking b, LATERAL (SELECT * FROM person p WHERE p.pid = b.pid) x

-- name: JOIN LATERAL ON TRUE
-- expect: refused sql_rejected "subqueries are not supported"
SELECT COUNT(*) FROM booking b JOIN LATERAL (SELECT * FROM person p WHERE p.pid = b.pid) x ON TRUE

-- name: comma join with the pid condition in WHERE
-- expect: refused sql_rejected "is not supported: only INNER JOIN on pid (JOIN b USING (pid))"
SELECT COUNT(*) FROM booking b, person p WHERE b.pid = p.pid

-- name: comma self-join
-- expect: refused sql_rejected "is not supported: only INNER JOIN on pid (JOIN b USING (pid))"
SELECT COUNT(*) FROM booking b1, booking b2

-- name: join on a non-identifier column
-- expect: refused sql_rejected "joins are on pid only: ON a.pid = b.pid or USING (pid)"
SELECT COUNT(*) FROM booking b JOIN person p ON b.region = p.region

-- name: self-join on region relates different people
-- expect: refused sql_rejected "joins are on pid only"
SELECT COUNT(*) FROM booking b1 JOIN booking b2 ON b1.region = b2.region

-- name: join on pid with an extra condition
-- expect: refused sql_rejected "joins are on pid only"
SELECT COUNT(*) FROM booking b JOIN person p ON b.pid = p.pid AND b.region = p.region

-- name: join on pid OR TRUE
-- expect: refused sql_rejected "joins are on pid only"
SELECT COUNT(*) FROM booking b JOIN person p ON b.pid = p.pid OR TRUE

-- name: join ON TRUE
-- expect: refused sql_rejected "joins are on pid only"
SELECT COUNT(*) FROM booking b JOIN person p ON TRUE

-- name: join on pid inequality
-- expect: refused sql_rejected "joins are on pid only"
SELECT COUNT(*) FROM booking b JOIN person p ON b.pid <> p.pid

-- name: join on pid greater-or-equal
-- expect: refused sql_rejected "joins are on pid only"
SELECT COUNT(*) FROM booking b JOIN person p ON b.pid >= p.pid

-- name: join on IS NOT DISTINCT FROM
-- expect: refused sql_rejected "joins are on pid only"
SELECT COUNT(*) FROM booking b JOIN person p ON b.pid IS NOT DISTINCT FROM p.pid

-- name: join on pids cast to text
-- expect: refused sql_rejected "joins are on pid only"
SELECT COUNT(*) FROM booking b JOIN person p ON CAST(b.pid AS VARCHAR) = CAST(p.pid AS VARCHAR)

-- name: join on unqualified pid
-- expect: refused sql_rejected "joins are on pid only"
SELECT COUNT(*) FROM booking b JOIN person p ON pid = pid

-- name: join equating one side's pid with itself is a cross join
-- expect: refused sql_rejected "the join condition must equate the pid of one side with the pid of the other"
SELECT COUNT(*) FROM booking b JOIN person p ON b.pid = b.pid

-- name: three tables, the last condition relating the first two
-- expect: refused sql_rejected "the join condition must equate the pid of one side with the pid of the other"
SELECT COUNT(*) FROM booking b JOIN prescription r ON b.pid = r.pid JOIN person p ON b.pid = r.pid

-- name: join condition naming an alias that is not in the query
-- expect: refused sql_rejected "the join condition must equate the pid of one side with the pid of the other"
SELECT COUNT(*) FROM booking b JOIN person p ON b.pid = x.pid

-- name: USING two columns
-- expect: refused sql_rejected "joins are on pid only: USING (pid)"
SELECT COUNT(*) FROM booking JOIN prescription USING (pid, service_code)

-- name: USING a non-identifier column
-- expect: refused sql_rejected "joins are on pid only: USING (pid)"
SELECT COUNT(*) FROM booking b JOIN person p USING (region)

-- name: four tables
-- expect: refused sql_rejected "at most 3 tables per query"
SELECT COUNT(*) FROM booking JOIN prescription USING (pid) JOIN diagnosis USING (pid) JOIN procedure USING (pid)

-- name: the same table twice without aliases
-- expect: refused sql_rejected "table name or alias booking used twice"
SELECT COUNT(*) FROM booking JOIN booking USING (pid)

-- name: an alias equal to another table's name
-- expect: refused sql_rejected "table name or alias person used twice"
SELECT COUNT(*) FROM booking AS person JOIN person USING (pid)

-- name: join with a subquery
-- expect: refused sql_rejected "subqueries are not supported"
SELECT COUNT(*) FROM booking b JOIN (SELECT pid FROM person) p USING (pid)

-- name: join with an unapproved table
-- expect: refused forbidden "the project is not approved for table lab_result"
SELECT COUNT(*) FROM booking b JOIN lab_result l ON b.pid = l.pid

-- name: join to reach an unapproved column
-- expect: refused forbidden "the project is not approved for column person.province"
SELECT p.province, COUNT(*) FROM booking b JOIN person p ON b.pid = p.pid GROUP BY p.province

-- name: unapproved column used only in WHERE
-- expect: refused forbidden "the project is not approved for column person.asl"
SELECT COUNT(*) FROM booking b JOIN person p USING (pid) WHERE p.asl = '120201'

-- name: ambiguous column after a join
-- expect: refused sql_rejected "column region is ambiguous: qualify it with its table's alias"
SELECT region, COUNT(*) FROM booking JOIN person USING (pid) GROUP BY region

-- name: an unknown alias qualifying a column
-- expect: refused sql_rejected "unknown table or alias q"
SELECT q.region, COUNT(*) FROM booking b JOIN person p USING (pid) GROUP BY q.region

-- name: a qualified table in a join
-- expect: refused sql_rejected "qualified table names are not allowed"
SELECT COUNT(*) FROM booking b JOIN main.person p ON b.pid = p.pid

-- name: self-join on pid is bounded by per-person truncation
-- expect: answered rows=1 columns=pairs:dp
SELECT COUNT(*) AS pairs FROM booking b1 JOIN booking b2 ON b1.pid = b2.pid

-- name: self-join on pid with a key from each side
-- expect: answered rows=16 columns=p1:key|p2:key|n:dp
SELECT b1.priority AS p1, b2.priority AS p2, COUNT(*) AS n FROM booking b1 JOIN booking b2 ON b1.pid = b2.pid GROUP BY p1, p2

-- name: join with the condition written right to left
-- expect: answered rows=2 columns=sex:key|n:dp
SELECT p.sex, COUNT(*) AS n FROM booking b JOIN person p ON p.pid = b.pid GROUP BY p.sex

-- name: join condition in parentheses
-- expect: answered rows=2 columns=sex:key|n:dp
SELECT p.sex, COUNT(*) AS n FROM booking b INNER JOIN person p ON (b.pid = p.pid) GROUP BY p.sex

-- name: USING (PID) in upper case
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking JOIN prescription USING (PID)

-- name: swapped aliases resolve to the right tables
-- expect: answered rows=2 columns=sex:key|w:dp
SELECT b.sex, AVG(p.wait_days) AS w FROM booking AS p JOIN person AS b ON b.pid = p.pid GROUP BY b.sex

-- name: three tables joined on pid
-- expect: answered rows=4 columns=priority:key|n:dp
SELECT b.priority, COUNT(*) AS n FROM booking b JOIN prescription r ON b.pid = r.pid JOIN diagnosis d ON r.pid = d.pid GROUP BY b.priority

-- name: three tables with USING
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking JOIN prescription USING (pid) JOIN vaccination USING (pid)

-- name: HAVING on the other side of a self-join is not the released sum
-- expect: refused sql_rejected "sum(wait_days) is not a released aggregate"
SELECT b1.priority, SUM(b1.wait_days) AS s FROM booking b1 JOIN booking b2 ON b1.pid = b2.pid GROUP BY b1.priority HAVING SUM(b2.wait_days) > 0

-- name: ORDER BY the other side of a self-join is not the released average
-- expect: refused sql_rejected "avg(wait_days) is not a released aggregate"
SELECT b1.priority, AVG(b1.wait_days) AS a FROM booking b1 JOIN booking b2 ON b1.pid = b2.pid GROUP BY b1.priority ORDER BY AVG(b2.wait_days) DESC LIMIT 1
