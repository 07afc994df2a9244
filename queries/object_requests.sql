-- Every request for one object, oldest first.
-- @param bucket string  bucket name
-- @param key string  object key (URL-decoded, as in the table)
-- @param start_date date  first request day (UTC), inclusive
-- @param end_date date  last request day (UTC), inclusive
SELECT
  request_time,
  operation,
  requester,
  remote_ip,
  http_status,
  error_code,
  bytes_sent,
  version_id,
  request_id
FROM s3_access_logs
WHERE request_date BETWEEN {{start_date}} AND {{end_date}}
  AND bucket = {{bucket}}
  AND "key" = {{key}}
ORDER BY request_time, request_id, operation
