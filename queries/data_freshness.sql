-- Per tenant and stream: the last successful run, its age, the cursor position and the last error.
WITH runs AS (
  SELECT tenant, stream,
         max(ended_at) FILTER (WHERE status = 'succeeded') AS last_success,
         max(ended_at) AS last_run,
         arg_max(error, ended_at) AS last_error,
         count(DISTINCT partition) AS partitions
  FROM _sync_runs GROUP BY tenant, stream
)
SELECT r.tenant, r.stream, r.partitions, r.last_success,
       date_diff('minute', r.last_success, now()) AS minutes_since_success,
       max(to_timestamp(CAST(json_extract(s.cursor, '$.value_us') AS BIGINT) / 1000000)) AS cursor_at,
       r.last_error
FROM runs r
LEFT JOIN _sync_state s ON s.tenant = r.tenant AND s.stream = r.stream
GROUP BY ALL
ORDER BY r.tenant, r.stream
