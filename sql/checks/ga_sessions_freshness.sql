-- Freshness: the newest session is at most @max_age_days days older than @as_of (the run's date).
-- failures: how many days too old it is (0 when fresh; an empty table counts as stale by @max_age_days + 1).
SELECT
  'ga_sessions.freshness' AS check_name,
  GREATEST(IFNULL(DATE_DIFF(@as_of, MAX(date), DAY), @max_age_days + 1) - @max_age_days, 0) AS failures,
  'day' AS unit
FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions`;
