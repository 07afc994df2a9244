-- Who deleted a Glue Data Catalog table, when, and from where (DeleteTable and BatchDeleteTable).
-- @param database string  Glue database of the table
-- @param table string  table name
-- @param start_date date  first event day (UTC), inclusive
-- @param end_date date  last event day (UTC), inclusive
SELECT
  event_time,
  event_name,
  user_arn,
  user_name,
  source_ip_address,
  user_agent,
  aws_region,
  recipient_account_id,
  error_code
FROM cloudtrail_events
WHERE event_date BETWEEN {{start_date}} AND {{end_date}}
  AND event_source = 'glue.amazonaws.com'
  AND event_name IN ('DeleteTable', 'BatchDeleteTable')
  AND json_extract_scalar(request_parameters, '$.databaseName') = {{database}}
  AND (
    json_extract_scalar(request_parameters, '$.name') = {{table}}
    OR contains(CAST(json_extract(request_parameters, '$.tablesToDelete') AS array(varchar)), {{table}})
  )
ORDER BY event_time, user_arn
