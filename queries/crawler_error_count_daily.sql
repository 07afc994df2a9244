-- The daily CrawlerErrorCount: ERROR lines per crawler and day.
-- @param start_date date  first event day (UTC), inclusive
-- @param end_date date  last event day (UTC), inclusive
SELECT
  event_date,
  crawler_name,
  count_if(level = 'ERROR') AS crawler_error_count
FROM crawler_log_events
WHERE event_date BETWEEN {{start_date}} AND {{end_date}}
GROUP BY 1, 2
ORDER BY event_date, crawler_name
