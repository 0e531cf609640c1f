SELECT provider_id, COUNT(*) AS bookings
FROM booking
GROUP BY provider_id
ORDER BY bookings DESC
LIMIT 10
