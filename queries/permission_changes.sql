-- Every Lake Formation permission grant and revoke in a date range, with who did it and for whom.
-- @param start_date date  first event day (UTC), inclusive
-- @param end_date date  last event day (UTC), inclusive
SELECT
  event_time,
  event_name,
  user_arn,
  source_ip_address,
  json_extract_scalar(request_parameters, '$.principal.dataLakePrincipalIdentifier') AS grantee,
  error_code,
  request_parameters
FROM cloudtrail_events
WHERE event_date BETWEEN {{start_date}} AND {{end_date}}
  AND event_source = 'lakeformation.amazonaws.com'
  AND event_name IN ('GrantPermissions', 'RevokePermissions', 'BatchGrantPermissions', 'BatchRevokePermissions')
ORDER BY event_time, event_name, user_arn
