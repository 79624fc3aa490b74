-- Leads per tenant and status, with each status's share and the overall conversion rate (CONVERTED / all).
SELECT tenant,
       status,
       count(*) AS leads,
       round(count(*) / sum(count(*)) OVER (PARTITION BY tenant), 4) AS share,
       round(sum(CASE WHEN status = 'CONVERTED' THEN count(*) ELSE 0 END) OVER (PARTITION BY tenant) / sum(count(*)) OVER (PARTITION BY tenant), 4) AS conversion_rate
FROM leads
WHERE _deleted_at IS NULL
GROUP BY tenant, status
ORDER BY tenant, leads DESC, status
