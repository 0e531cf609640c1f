SELECT CASE WHEN p.birth_year >= 1960 THEN 'under 65' ELSE '65 and over' END AS age_band,
       COUNT(DISTINCT pid) AS people,
       SUM(b.wait_days, contribution_bounds_per_group => (0, 200)) AS total_wait,
       STDDEV_POP(b.wait_days) AS sd_wait
FROM booking b JOIN person p USING (pid)
WHERE b.d_contact >= '2024-06-01' AND b.wait_days / 7 < 52
GROUP BY age_band
HAVING people > 10
