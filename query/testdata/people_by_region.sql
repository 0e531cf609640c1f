SELECT region, COUNT(DISTINCT pid) AS people
FROM booking
WHERE first_access
GROUP BY region
