SELECT service_code, MEDIAN(wait_days) AS median_wait, QUANTILE_CONT(wait_days, 0.9) AS p90_wait
FROM booking
WHERE first_access AND priority IS NOT NULL
GROUP BY service_code
