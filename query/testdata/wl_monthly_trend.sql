SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1, delta = 0, max_groups_contributed = 6)
  date_trunc('month', d_contact) AS month, AVG(CAST(within_target AS INTEGER)) AS share
FROM booking
WHERE region IN ('120', '030')
GROUP BY month
ORDER BY month
