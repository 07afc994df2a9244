-- Access-denied spikes by principal: days on which a principal got at least min_denied
-- AccessDenied-type errors, with the APIs involved.
-- @param start_date date  first event day (UTC), inclusive
-- @param end_date date  last event day (UTC), inclusive
-- @param min_denied int  smallest daily count that counts as a spike
SELECT
  event_date,
  coalesce(user_arn, user_principal_id, 'unknown') AS principal,
  count(*) AS denied,
  array_sort(array_agg(DISTINCT event_name)) AS event_names
FROM cloudtrail_events
WHERE event_date BETWEEN {{start_date}} AND {{end_date}}
  AND (error_code LIKE '%AccessDenied%' OR error_code LIKE '%UnauthorizedOperation%'
       OR error_code = 'Forbidden')
GROUP BY 1, 2
HAVING count(*) >= {{min_denied}}
ORDER BY denied DESC, event_date, principal
