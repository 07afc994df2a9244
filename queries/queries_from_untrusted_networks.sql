-- Athena queries started from outside the trusted networks (source IP in none of the CIDRs).
-- Calls made by AWS services carry a host name instead of an IP and are left out.
-- @param start_date date  first event day (UTC), inclusive
-- @param end_date date  last event day (UTC), inclusive
-- @param trusted_cidrs string_list  trusted networks, e.g. 10.0.0.0/8
SELECT
  event_time,
  user_arn,
  source_ip_address,
  json_extract_scalar(request_parameters, '$.workGroup') AS work_group,
  json_extract_scalar(request_parameters, '$.queryString') AS query_string
FROM cloudtrail_events
WHERE event_date BETWEEN {{start_date}} AND {{end_date}}
  AND event_source = 'athena.amazonaws.com'
  AND event_name = 'StartQueryExecution'
  AND TRY_CAST(source_ip_address AS IPADDRESS) IS NOT NULL
  AND NOT any_match({{trusted_cidrs}}, cidr -> contains(cidr, CAST(source_ip_address AS IPADDRESS)))
ORDER BY event_time, user_arn
