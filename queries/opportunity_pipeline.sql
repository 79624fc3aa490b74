-- Opportunities per tenant and stage (status): count, share, and how many have a purchase date set. The
-- list API carries no amounts, so the value of a stage is its count.
SELECT tenant,
       status AS stage,
       count(*) AS opportunities,
       round(count(*) / sum(count(*)) OVER (PARTITION BY tenant), 4) AS share,
       count(purchase_effective_date) AS with_purchase_date,
       min(created_on) AS oldest,
       max(created_on) AS newest
FROM opportunities
WHERE _deleted_at IS NULL
GROUP BY tenant, status
ORDER BY tenant, stage
