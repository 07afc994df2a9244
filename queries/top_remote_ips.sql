-- Top 10 remote IPs on a bucket on one day, by requests.
-- @param bucket string  bucket name
-- @param day date  request day (UTC)
SELECT
  remote_ip,
  count(*) AS requests,
  sum(bytes_sent) AS bytes_sent
FROM s3_access_logs
WHERE request_date = {{day}}
  AND bucket = {{bucket}}
GROUP BY remote_ip
ORDER BY requests DESC, remote_ip NULLS LAST
LIMIT 10
