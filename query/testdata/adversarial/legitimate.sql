Legitimate queries of every allowed shape (docs/privacy.md, "From SQL to a release"): they must be
answered. Keys with a public domain release every value of the domain (empty groups
included); other keys go through DP partition selection, which needs delta > 0.

-- name: total bookings
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking

-- name: people with a booking
-- expect: answered rows=1 columns=people:dp
SELECT COUNT(DISTINCT pid) AS people FROM booking

-- name: bookings with a delivery date
-- expect: answered rows=1 columns=delivered:dp
SELECT COUNT(d_delivered) AS delivered FROM booking

-- name: share within target by region and priority
-- expect: answered rows=84 columns=region:key|priority:key|n:dp|share:dp
SELECT region, priority, COUNT(*) AS n, AVG(CAST(within_target AS INTEGER)) AS share FROM booking WHERE first_access GROUP BY region, priority

-- name: median wait by service
-- expect: answered rows=20 columns=service_code:key|median_wait:dp
SELECT service_code, MEDIAN(wait_days) AS median_wait FROM booking WHERE first_access GROUP BY service_code ORDER BY median_wait DESC

-- name: 90th percentile with WITHIN GROUP
-- expect: answered rows=2 columns=service_kind:key|p90:dp
SELECT service_kind, PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY wait_days) AS p90 FROM booking GROUP BY service_kind

-- name: quantile_cont and quantile
-- expect: answered rows=4 columns=priority:key|q25:dp|q75:dp
SELECT priority, quantile_cont(wait_days, 0.25) AS q25, quantile(wait_days, 0.75) AS q75 FROM booking GROUP BY priority

-- name: monthly trend
-- expect: answered rows=24 columns=month:key|share:dp
SELECT date_trunc('month', d_contact) AS month, AVG(CAST(within_target AS INTEGER)) AS share FROM booking GROUP BY month ORDER BY month

-- name: quarters of the period
-- expect: answered rows=8 columns=q:key|n:dp
SELECT date_trunc('quarter', d_contact) AS q, COUNT(*) AS n FROM booking GROUP BY q

-- name: weekly counts in one month
-- expect: answered rows=5 columns=w:key|n:dp
SELECT date_trunc('week', d_contact) AS w, COUNT(*) AS n FROM booking WHERE d_contact BETWEEN '2024-03-01' AND '2024-03-31' GROUP BY w

-- name: year of contact
-- expect: answered rows=2 columns=y:key|total_wait:dp
SELECT year(d_contact) AS y, SUM(wait_days) AS total_wait FROM booking GROUP BY y

-- name: extract year
-- expect: answered rows=2 columns=y:key|n:dp
SELECT extract(year FROM d_contact) AS y, COUNT(*) AS n FROM booking GROUP BY y

-- name: month of year
-- expect: answered rows=12 columns=m:key|n:dp
SELECT month(d_contact) AS m, COUNT(*) AS n FROM booking GROUP BY m

-- name: ISO weekday
-- expect: answered rows=7 columns=d:key|n:dp
SELECT isodow(d_contact) AS d, COUNT(*) AS n FROM booking GROUP BY d

-- name: day of week through date_part
-- expect: answered rows=7 columns=d:key|n:dp
SELECT date_part('dayofweek', d_contact) AS d, COUNT(*) AS n FROM booking GROUP BY d

-- name: quarter number
-- expect: answered rows=4 columns=q:key|n:dp
SELECT quarter(d_contact) AS q, COUNT(*) AS n FROM booking GROUP BY q

-- name: variances and standard deviations
-- expect: answered rows=2 columns=y:key|vp:dp|vs:dp|sp:dp|ss:dp|v:dp|s:dp
SELECT year(d_contact) AS y, VAR_POP(wait_days) AS vp, VAR_SAMP(wait_days) AS vs, STDDEV_POP(wait_days) AS sp, STDDEV_SAMP(wait_days) AS ss, variance(wait_days) AS v, stddev(wait_days) AS s FROM booking GROUP BY y

-- name: mean as an alias of avg
-- expect: answered rows=1 columns=m:dp
SELECT mean(wait_days) AS m FROM booking

-- name: CASE bands as a key
-- expect: answered rows=3 columns=band:key|people:dp
SELECT CASE WHEN wait_days <= 10 THEN 'short' WHEN wait_days <= 60 THEN 'medium' ELSE 'long' END AS band, COUNT(DISTINCT pid) AS people FROM booking GROUP BY band

-- name: boolean comparison as a key
-- expect: answered rows=2 columns=late:key|n:dp
SELECT wait_days > 30 AS late, COUNT(*) AS n FROM booking GROUP BY late

-- name: boolean column as a key
-- expect: answered rows=2 columns=garanzia:key|n:dp
SELECT garanzia, COUNT(*) AS n FROM booking GROUP BY garanzia

-- name: group by position
-- expect: answered rows=4 columns=channel:key|n:dp
SELECT channel, COUNT(*) AS n FROM booking GROUP BY 1

-- name: group by alias of an expression
-- expect: answered rows=3 columns=c:key|n:dp
SELECT CASE WHEN channel = 'cup' THEN 'desk' WHEN channel = 'phone' THEN 'phone' ELSE 'other' END AS c, COUNT(*) AS n FROM booking GROUP BY c

-- name: sum of a CASE with derived bounds
-- expect: answered rows=1 columns=late:dp
SELECT SUM(CASE WHEN wait_days > 30 THEN 1 ELSE 0 END) AS late FROM booking

-- name: average of a date difference with bounds
-- expect: answered rows=4 columns=priority:key|days:dp
SELECT priority, AVG(date_diff('day', d_contact, d_first_available), contribution_bounds_per_group => (0, 365)) AS days FROM booking GROUP BY priority

-- name: date subtraction
-- expect: answered rows=1 columns=days:dp
SELECT AVG(d_appointment - d_contact, contribution_bounds_per_group => (0, 365)) AS days FROM booking

-- name: arithmetic with derived bounds
-- expect: answered rows=1 columns=weeks:dp
SELECT AVG(wait_days / 7) AS weeks FROM booking

-- name: abs, least and greatest with derived bounds
-- expect: answered rows=1 columns=a:dp|b:dp
SELECT AVG(abs(wait_days - 30)) AS a, SUM(least(greatest(wait_days, 10), 60)) AS b FROM booking

-- name: filters of every kind
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE d_contact BETWEEN '2024-01-01' AND '2024-12-31' AND channel <> 'phone' AND service_code LIKE '89%' AND priority IN ('B', 'D') AND d_delivered IS NOT NULL AND NOT garanzia

-- name: string functions in filters
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE lower(channel) = 'cup' OR upper(status) = 'BOOKED' OR starts_with(provider_id, '12') OR contains(service_code, '.') OR length(trim(asl)) = 6

-- name: substring and left in a key with partition selection
-- request: delta=1e-6
-- expect: answered selection columns=p:key|n:dp
SELECT substring(provider_id, 1, 3) AS p, COUNT(*) AS n FROM booking GROUP BY p

-- name: ILIKE and NOT LIKE
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE channel ILIKE 'C%' AND service_code NOT LIKE '99%'

-- name: coalesce and nullif
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE coalesce(garanzia, false) AND nullif(channel, 'phone') IS NOT NULL

-- name: IS DISTINCT FROM
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE priority IS DISTINCT FROM 'U'

-- name: HAVING, ORDER BY and LIMIT on released values
-- expect: answered rows=3 columns=region:key|n:dp
SELECT region, COUNT(*) AS n FROM booking GROUP BY region HAVING n > -1e9 ORDER BY n DESC LIMIT 3

-- name: HAVING on a key and arithmetic on released values
-- expect: answered rows=1 columns=region:key|n:dp|w:dp
SELECT region, COUNT(*) AS n, SUM(wait_days) AS w FROM booking GROUP BY region HAVING region = '120' AND w / n > -1e9

-- name: ORDER BY position and OFFSET
-- expect: answered rows=2 columns=priority:key|n:dp
SELECT priority, COUNT(*) AS n FROM booking GROUP BY priority ORDER BY 2 DESC, 1 LIMIT 2 OFFSET 1

-- name: ORDER BY a released aggregate written out
-- expect: answered rows=4 columns=priority:key|count(*):dp
SELECT priority, COUNT(*) FROM booking GROUP BY priority ORDER BY COUNT(*)

-- name: WHERE narrows a public key
-- expect: answered rows=2 columns=region:key|people:dp
SELECT region, COUNT(DISTINCT pid) AS people FROM booking WHERE region IN ('120', '030') GROUP BY region

-- name: WHERE narrows a month key
-- expect: answered rows=3 columns=m:key|n:dp
SELECT date_trunc('month', d_contact) AS m, COUNT(*) AS n FROM booking WHERE d_contact >= '2024-03-15' AND d_contact < '2024-06-01' GROUP BY m

-- name: a public key narrowed to nothing
-- expect: answered rows=0 columns=region:key|n:dp
SELECT region, COUNT(*) AS n FROM booking WHERE region = 'zzz' GROUP BY region

-- name: WHERE FALSE
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE FALSE

-- name: WHERE NULL
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE NULL

-- name: provider keys through partition selection
-- request: delta=1e-6
-- expect: answered selection columns=provider_id:key|n:dp
SELECT provider_id, COUNT(*) AS n FROM booking GROUP BY provider_id

-- name: partition selection with the delta in the clause
-- expect: answered selection columns=provider_id:key|n:dp
SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 0.25, delta = 1e-6, max_groups_contributed = 2) provider_id, COUNT(*) AS n FROM booking GROUP BY provider_id HAVING n > 100 ORDER BY n DESC LIMIT 3

-- name: a non-public date key through partition selection
-- request: delta=1e-6
-- expect: answered selection columns=m:key|n:dp
SELECT date_trunc('month', d_appointment) AS m, COUNT(*) AS n FROM booking GROUP BY m

-- name: a public key and a selected key together
-- request: delta=1e-6
-- expect: answered selection columns=region:key|provider_id:key|n:dp
SELECT region, provider_id, COUNT(*) AS n FROM booking GROUP BY region, provider_id

-- name: partition selection without delta is refused with advice
-- expect: refused invalid_options "needs delta > 0 (e.g. delta = 1e-6)"
SELECT provider_id, COUNT(*) AS n FROM booking GROUP BY provider_id

-- name: a key that is not groupable
-- expect: refused sql_rejected "wait_days may not be a GROUP BY key (it is not marked groupable in the catalog)"
SELECT wait_days, COUNT(*) FROM booking GROUP BY wait_days

-- name: a non-groupable column under a public CASE key
-- expect: answered rows=2 columns=long:key|n:dp
SELECT CASE WHEN wait_days > 90 THEN 'yes' ELSE 'no' END AS long, COUNT(*) AS n FROM booking GROUP BY long

-- name: join with person by sex and age band
-- expect: answered rows=6 columns=sex:key|band:key|w:dp
SELECT p.sex, CASE WHEN p.birth_year < 1960 THEN 'old' WHEN p.birth_year < 1990 THEN 'mid' ELSE 'young' END AS band, AVG(b.wait_days) AS w FROM booking b JOIN person p USING (pid) GROUP BY p.sex, band

-- name: join with prescription
-- expect: answered rows=4 columns=priority:key|n:dp
SELECT r.priority, COUNT(*) AS n FROM prescription r JOIN booking b ON r.pid = b.pid GROUP BY r.priority

-- name: an empty table by year
-- expect: answered rows=2 columns=y:key|n:dp
SELECT year(vacc_date) AS y, COUNT(*) AS n FROM vaccination GROUP BY y

-- name: an empty table with bounds from the catalog
-- expect: answered rows=1 columns=v:dp
SELECT AVG(version) AS v FROM document

-- name: person by sex
-- expect: answered rows=2 columns=sex:key|n:dp
SELECT sex, COUNT(*) AS n FROM person GROUP BY sex

-- name: FROM-first syntax
-- expect: answered rows=1 columns=n:dp
FROM booking SELECT COUNT(*) AS n

-- name: trailing semicolon and comments
-- expect: answered rows=4 columns=status:key|n:dp
-- leading comment
SELECT status, /* inline */ COUNT(*) AS n FROM booking GROUP BY status; -- trailing

-- name: quoted identifiers and mixed case
-- expect: answered rows=4 columns=Priority:key|N:dp
SELECT "priority" AS "Priority", count(*) AS "N" FROM "booking" GROUP BY "priority"

-- name: the same key twice in GROUP BY
-- expect: answered rows=4 columns=priority:key|n:dp
SELECT priority, COUNT(*) AS n FROM booking GROUP BY priority, priority

-- name: a key not in the select list
-- expect: answered rows=4 columns=n:dp
SELECT COUNT(*) AS n FROM booking GROUP BY priority

-- name: request bounds for an aggregate
-- request: bounds=w:0:60
-- expect: answered rows=1 columns=w:dp
SELECT AVG(wait_days) AS w FROM booking

-- name: request bounds for an unknown aggregate
-- request: bounds=x:0:60
-- expect: refused invalid_options "bounds given for x, which is not an aggregate of the query"
SELECT AVG(wait_days) AS w FROM booking

-- name: an unknown column
-- expect: refused sql_rejected "unknown column wait" at=35
SELECT COUNT(*) FROM booking WHERE wait > 3

-- name: PERCENTILE_CONT with ORDER BY DESC is the complementary quantile
-- expect: answered rows=1 columns=quantile_cont(wait_days, 0.1):dp
SELECT PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY wait_days DESC) FROM booking

-- name: an unnamed median is named by its rank
-- expect: answered rows=1 columns=median(wait_days):dp
SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY wait_days DESC) FROM booking

-- name: a CASE key with no results releases nothing
-- expect: answered rows=0 columns=k:key|n:dp
SELECT CASE WHEN wait_days > 5 THEN NULL END AS k, COUNT(*) AS n FROM booking GROUP BY k

-- name: a CASE key of dates
-- expect: answered rows=2 columns=k:key|n:dp
SELECT CASE WHEN wait_days > 5 THEN DATE '2024-01-01' ELSE CAST('2025-01-01' AS DATE) END AS k, COUNT(*) AS n FROM booking GROUP BY k

-- name: a CASE key of TRUE and FALSE
-- expect: answered rows=2 columns=k:key|n:dp
SELECT CASE WHEN wait_days > 5 THEN TRUE ELSE FALSE END AS k, COUNT(*) AS n FROM booking GROUP BY k

-- name: keys aliased with each other's names
-- expect: answered rows=84 columns=priority:key|region:key|n:dp
SELECT region AS priority, priority AS region, COUNT(*) AS n FROM booking GROUP BY region, priority

-- name: coalesce of a public column through partition selection
-- request: delta=1e-6
-- expect: answered selection columns=k:key|n:dp
SELECT coalesce(priority, 'none') AS k, COUNT(*) AS n FROM booking GROUP BY k

-- name: an upper-case table name
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM BOOKING

-- name: HAVING on a date key
-- expect: answered rows=12 columns=m:key|n:dp
SELECT date_trunc('month', d_contact) AS m, COUNT(*) AS n FROM booking GROUP BY m HAVING m >= '2025-01-01'

-- name: contradictory WHERE on a public key
-- expect: answered rows=0 columns=region:key|n:dp
SELECT region, COUNT(*) AS n FROM booking WHERE region = '120' AND region = '030' GROUP BY region

-- name: WHERE TRUE and comparisons with TRUE
-- expect: answered rows=2 columns=first_access:key|n:dp
SELECT first_access, COUNT(*) AS n FROM booking WHERE TRUE AND garanzia = TRUE GROUP BY first_access
