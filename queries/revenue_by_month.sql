-- Paid invoice revenue per tenant, month and currency (never summed across currencies).
SELECT tenant,
       date_trunc('month', creation_date AT TIME ZONE 'UTC')::DATE AS month,
       currency,
       count(*) AS invoices,
       sum(total) AS revenue
FROM invoices
WHERE _deleted_at IS NULL AND status = 'PAID' AND total IS NOT NULL
GROUP BY ALL
ORDER BY tenant, month, currency
