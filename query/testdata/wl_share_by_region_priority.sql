SELECT region, priority, COUNT(*) AS n, AVG(CAST(within_target AS INTEGER)) AS share_within_target
FROM booking
WHERE first_access
GROUP BY region, priority
ORDER BY region, priority
