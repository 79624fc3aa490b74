-- One row per live company (of each tenant): its users, leads, opportunities (as customer), invoices, and paid revenue (money, per currency: paid_revenue when all paid invoices share one currency, paid_revenue_by_currency always).
WITH u AS (SELECT tenant, company_id, count(*) AS n FROM users WHERE _deleted_at IS NULL GROUP BY 1, 2),
     l AS (SELECT tenant, creator_company_id AS company_id, count(*) AS n FROM leads WHERE _deleted_at IS NULL GROUP BY 1, 2),
     o AS (SELECT tenant, customer_company_id AS company_id, count(*) AS n FROM opportunities WHERE _deleted_at IS NULL GROUP BY 1, 2),
     i AS (SELECT tenant, company_id, count(*) AS n, count(*) FILTER (WHERE status = 'PAID') AS paid
           FROM invoices WHERE _deleted_at IS NULL GROUP BY 1, 2),
     pc AS (SELECT tenant, company_id, currency, sum(total) AS amount
            FROM invoices WHERE _deleted_at IS NULL AND status = 'PAID' AND total IS NOT NULL GROUP BY 1, 2, 3),
     p AS (SELECT tenant, company_id,
                  CASE WHEN count(*) = 1 THEN any_value(currency) END AS currency,
                  CASE WHEN count(*) = 1 THEN any_value(amount) END AS amount,
                  string_agg(coalesce(currency, '?') || ' ' || CAST(amount AS VARCHAR), ', ' ORDER BY currency) AS by_currency
           FROM pc GROUP BY 1, 2)
SELECT c.tenant, c.id AS company_id, c.name, c.status,
       coalesce(u.n, 0) AS users,
       coalesce(l.n, 0) AS leads,
       coalesce(o.n, 0) AS opportunities,
       coalesce(i.n, 0) AS invoices,
       coalesce(i.paid, 0) AS paid_invoices,
       p.currency AS paid_currency,
       p.amount AS paid_revenue,
       p.by_currency AS paid_revenue_by_currency
FROM companies c
LEFT JOIN u ON u.tenant = c.tenant AND u.company_id = c.id
LEFT JOIN l ON l.tenant = c.tenant AND l.company_id = c.id
LEFT JOIN o ON o.tenant = c.tenant AND o.company_id = c.id
LEFT JOIN i ON i.tenant = c.tenant AND i.company_id = c.id
LEFT JOIN p ON p.tenant = c.tenant AND p.company_id = c.id
WHERE c._deleted_at IS NULL
ORDER BY c.tenant, c.name
