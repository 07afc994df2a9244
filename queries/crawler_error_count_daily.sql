-- The daily CrawlerErrorCount: log events the CloudWatch metric filter `ERROR` matches, per crawler and day.
-- @param start_date date  first day (UTC), inclusive
-- @param end_date date  last day (UTC), inclusive
SELECT
  dt AS event_date,
  crawler_name,
  error_count AS crawler_error_count
FROM agg_crawler_daily
WHERE dt BETWEEN {{start_date}} AND {{end_date}}
ORDER BY dt, crawler_name
