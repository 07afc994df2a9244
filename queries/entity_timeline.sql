-- Timeline of one principal or IP address across CloudTrail and S3 server access logs, oldest first.
-- The entity is matched as the caller's ARN, principal id, invoking service, the role of an
-- assumed-role session (give the role ARN, with or without its path: arn:aws:iam::<account>:role/[path/]<name>;
-- CloudTrail also matches the session issuer's ARN), an S3 requester (ARN,
-- canonical user id, or service principal logged as svc:<service>) or a source / remote IP.
-- @param entity string  principal ARN, role ARN, principal id, service principal, canonical id or IP address
-- @param start_date date  first event day (UTC), inclusive
-- @param end_date date  last event day (UTC), inclusive
SELECT
  event_time,
  source,
  action,
  resource,
  result,
  error_code,
  principal,
  source_ip,
  user_agent,
  account_id,
  event_id
FROM (
  SELECT
    event_time,
    'cloudtrail' AS source,
    concat(split_part(event_source, '.', 1), ':', event_name) AS action,
    array_join(transform(resources, r -> r.arn), ' ') AS resource,
    CASE WHEN error_code IS NULL THEN 'success' ELSE 'failure' END AS result,
    error_code,
    coalesce(user_arn, invoked_by, user_principal_id) AS principal,
    source_ip_address AS source_ip,
    user_agent,
    recipient_account_id AS account_id,
    event_id
  FROM cloudtrail_events
  WHERE event_date BETWEEN {{start_date}} AND {{end_date}}
    AND (
      user_arn = {{entity}}
      OR session_issuer_arn = {{entity}}
      OR user_principal_id = {{entity}}
      OR invoked_by = {{entity}}
      OR source_ip_address = {{entity}}
      -- a role ARN finds its sessions, arn:aws:sts::<account>:assumed-role/<name>/<session>
      -- (a session ARN names the role without its path)
      OR (regexp_like({{entity}}, '^arn:[^:]+:iam::[0-9]{12}:role/')
          AND starts_with(user_arn, regexp_replace({{entity}}, '^arn:([^:]+):iam::([0-9]{12}):role/(.*/)?([^/]+)$',
                                                   'arn:$1:sts::$2:assumed-role/$4/')))
    )
  UNION ALL
  SELECT
    request_time AS event_time,
    's3_access' AS source,
    operation AS action,
    CASE WHEN "key" IS NULL THEN bucket ELSE concat(bucket, '/', "key") END AS resource,
    CASE WHEN http_status >= 400 OR error_code IS NOT NULL THEN 'failure' ELSE 'success' END AS result,
    error_code,
    requester AS principal,
    remote_ip AS source_ip,
    user_agent,
    CAST(NULL AS varchar) AS account_id,
    request_id AS event_id
  FROM s3_access_logs
  WHERE request_date BETWEEN {{start_date}} AND {{end_date}}
    AND (
      requester = {{entity}}
      OR requester = concat('svc:', {{entity}})
      OR remote_ip = {{entity}}
      OR (regexp_like({{entity}}, '^arn:[^:]+:iam::[0-9]{12}:role/')
          AND starts_with(requester, regexp_replace({{entity}}, '^arn:([^:]+):iam::([0-9]{12}):role/(.*/)?([^/]+)$',
                                                    'arn:$1:sts::$2:assumed-role/$4/')))
    )
) AS timeline
ORDER BY event_time, source, event_id
