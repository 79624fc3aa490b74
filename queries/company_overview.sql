-- One row per live company: its users, leads, opportunities (as customer), invoices and paid revenue.
WITH u AS (SELECT company_id, count(*) AS n FROM users WHERE _deleted_at IS NULL GROUP BY 1),
     l AS (SELECT creator_company_id AS company_id, count(*) AS n FROM leads WHERE _deleted_at IS NULL GROUP BY 1),
     o AS (SELECT customer_company_id AS company_id, count(*) AS n FROM opportunities WHERE _deleted_at IS NULL GROUP BY 1),
     i AS (SELECT company_id, count(*) AS n, count(*) FILTER (WHERE status = 'PAID') AS paid
           FROM invoices WHERE _deleted_at IS NULL GROUP BY 1)
SELECT c.id AS company_id, c.name, c.status,
       coalesce(u.n, 0) AS users,
       coalesce(l.n, 0) AS leads,
       coalesce(o.n, 0) AS opportunities,
       coalesce(i.n, 0) AS invoices,
       coalesce(i.paid, 0) AS paid_invoices
FROM companies c
LEFT JOIN u ON u.company_id = c.id
LEFT JOIN l ON l.company_id = c.id
LEFT JOIN o ON o.company_id = c.id
LEFT JOIN i ON i.company_id = c.id
WHERE c._deleted_at IS NULL
ORDER BY c.name
