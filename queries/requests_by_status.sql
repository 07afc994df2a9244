-- Requests on a bucket by HTTP status, per day.
-- @param bucket string  bucket name
-- @param start_date date  first request day (UTC), inclusive
-- @param end_date date  last request day (UTC), inclusive
SELECT
  request_date,
  http_status,
  count(*) AS requests
FROM s3_access_logs
WHERE request_date BETWEEN {{start_date}} AND {{end_date}}
  AND bucket = {{bucket}}
GROUP BY 1, 2
ORDER BY request_date, http_status NULLS LAST
