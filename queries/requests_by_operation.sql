-- Requests on a bucket by operation: count, errors (HTTP status 400 and above) and bytes sent.
-- @param bucket string  bucket name
-- @param start_date date  first request day (UTC), inclusive
-- @param end_date date  last request day (UTC), inclusive
SELECT
  operation,
  count(*) AS requests,
  count_if(http_status >= 400) AS errors,
  sum(bytes_sent) AS bytes_sent
FROM s3_access_logs
WHERE request_date BETWEEN {{start_date}} AND {{end_date}}
  AND bucket = {{bucket}}
GROUP BY operation
ORDER BY requests DESC, operation
