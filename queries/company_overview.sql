-- One row per live company: its users, leads, opportunities (as customer), invoices, and paid revenue (money, per currency: paid_revenue when all paid invoices share one currency, paid_revenue_by_currency always).
WITH u AS (SELECT company_id, count(*) AS n FROM users WHERE _deleted_at IS NULL GROUP BY 1),
     l AS (SELECT creator_company_id AS company_id, count(*) AS n FROM leads WHERE _deleted_at IS NULL GROUP BY 1),
     o AS (SELECT customer_company_id AS company_id, count(*) AS n FROM opportunities WHERE _deleted_at IS NULL GROUP BY 1),
     i AS (SELECT company_id, count(*) AS n, count(*) FILTER (WHERE status = 'PAID') AS paid
           FROM invoices WHERE _deleted_at IS NULL GROUP BY 1),
     pc AS (SELECT company_id, currency, sum(total) AS amount
            FROM invoices WHERE _deleted_at IS NULL AND status = 'PAID' AND total IS NOT NULL GROUP BY 1, 2),
     p AS (SELECT company_id,
                  CASE WHEN count(*) = 1 THEN any_value(currency) END AS currency,
                  CASE WHEN count(*) = 1 THEN any_value(amount) END AS amount,
                  string_agg(coalesce(currency, '?') || ' ' || CAST(amount AS VARCHAR), ', ' ORDER BY currency) AS by_currency
           FROM pc GROUP BY 1)
SELECT c.id AS company_id, c.name, c.status,
       coalesce(u.n, 0) AS users,
       coalesce(l.n, 0) AS leads,
       coalesce(o.n, 0) AS opportunities,
       coalesce(i.n, 0) AS invoices,
       coalesce(i.paid, 0) AS paid_invoices,
       p.currency AS paid_currency,
       p.amount AS paid_revenue,
       p.by_currency AS paid_revenue_by_currency
FROM companies c
LEFT JOIN u ON u.company_id = c.id
LEFT JOIN l ON l.company_id = c.id
LEFT JOIN o ON o.company_id = c.id
LEFT JOIN i ON i.company_id = c.id
LEFT JOIN p ON p.company_id = c.id
WHERE c._deleted_at IS NULL
ORDER BY c.name
