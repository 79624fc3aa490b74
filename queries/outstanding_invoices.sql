-- Unpaid invoices per tenant, by aging bucket (days past due, as of now) and currency.
SELECT tenant,
       CASE
         WHEN due_date IS NULL OR due_date >= now() THEN 'not due'
         WHEN now() - due_date <= INTERVAL 30 DAY THEN '1-30'
         WHEN now() - due_date <= INTERVAL 60 DAY THEN '31-60'
         WHEN now() - due_date <= INTERVAL 90 DAY THEN '61-90'
         ELSE '90+'
       END AS aging_bucket,
       currency,
       count(*) AS invoices,
       sum(total) AS outstanding
FROM invoices
WHERE _deleted_at IS NULL AND status = 'UNPAID'
GROUP BY ALL
ORDER BY tenant, aging_bucket, currency
