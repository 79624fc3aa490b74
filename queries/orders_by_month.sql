-- Subscription events per tenant, month (UTC) and event type: how many, how many succeeded, and how many distinct orders they concern.
SELECT tenant,
       date_trunc('month', creation_date AT TIME ZONE 'UTC')::DATE AS month,
       type,
       count(*) AS events,
       count(*) FILTER (WHERE successful) AS successful,
       count(DISTINCT order_id) AS orders
FROM events
WHERE _deleted_at IS NULL
GROUP BY ALL
ORDER BY tenant, month, type
