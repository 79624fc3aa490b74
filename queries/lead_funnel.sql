-- Leads per status, with each status's share and the overall conversion rate (CONVERTED / all).
SELECT status,
       count(*) AS leads,
       round(count(*) / sum(count(*)) OVER (), 4) AS share,
       round(sum(CASE WHEN status = 'CONVERTED' THEN count(*) ELSE 0 END) OVER () / sum(count(*)) OVER (), 4) AS conversion_rate
FROM leads
WHERE _deleted_at IS NULL
GROUP BY status
ORDER BY leads DESC, status
