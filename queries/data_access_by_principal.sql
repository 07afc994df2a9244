-- Who read which table: Lake Formation GetDataAccess calls per principal and table.
-- @param start_date date  first event day (UTC), inclusive
-- @param end_date date  last event day (UTC), inclusive
SELECT
  user_arn,
  json_extract_scalar(request_parameters, '$.tableArn') AS table_arn,
  count(*) AS calls,
  min(event_time) AS first_access,
  max(event_time) AS last_access
FROM cloudtrail_events
WHERE event_date BETWEEN {{start_date}} AND {{end_date}}
  AND event_source = 'lakeformation.amazonaws.com'
  AND event_name = 'GetDataAccess'
GROUP BY 1, 2
ORDER BY calls DESC, user_arn, table_arn
