-- Distinct requesters of a bucket, with their request counts and first and last request.
-- @param bucket string  bucket name
-- @param start_date date  first request day (UTC), inclusive
-- @param end_date date  last request day (UTC), inclusive
SELECT
  requester,
  count(*) AS requests,
  min(request_time) AS first_request,
  max(request_time) AS last_request
FROM s3_access_logs
WHERE request_date BETWEEN {{start_date}} AND {{end_date}}
  AND bucket = {{bucket}}
GROUP BY requester
ORDER BY requests DESC, requester NULLS LAST
