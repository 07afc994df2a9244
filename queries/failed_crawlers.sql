-- Which Glue crawlers failed on a day (default: yesterday, UTC) and their first error.
-- @param day date=yesterday  run day (UTC): the day the run started
SELECT
  crawler_name,
  run_id,
  started_at,
  finished_at,
  error_count,
  first_error_message
FROM crawler_runs
WHERE run_date = {{day}}
  AND status = 'failed'
ORDER BY crawler_name, started_at
