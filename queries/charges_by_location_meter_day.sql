-- HighLevel wallet charges per tenant, location, meter and day (UTC): charges only, net of refunds (refund rows, transactionType = refund, and charges marked refunded are left out).
SELECT c.tenant,
       c.location_id,
       l.name AS location_name,
       c.meter_id,
       (c.created_at AT TIME ZONE 'UTC')::DATE AS day,
       c.currency,
       count(*) AS charges,
       sum(c.units) AS units,
       sum(c.amount_charged) AS amount
FROM charges c
LEFT JOIN locations l ON l.tenant = c.tenant AND l.id = c.location_id
WHERE c._deleted_at IS NULL
  AND NOT coalesce(c.refunded, false)
  AND coalesce(lower(c.transaction_type), 'charge') <> 'refund'
GROUP BY ALL
ORDER BY c.tenant, day, c.location_id, c.meter_id
