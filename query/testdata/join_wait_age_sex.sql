SELECT CASE WHEN p.birth_year >= 1960 THEN 'under 65' ELSE '65 and over' END AS age_band, p.sex, AVG(b.wait_days) AS avg_wait
FROM booking b JOIN person p ON b.pid = p.pid
WHERE b.first_access
GROUP BY age_band, p.sex
