-- Freshness of the streaming aggregates: the newest pane of rides_per_minute was emitted at most
-- @max_age_minutes minutes ago.
-- failures: how many minutes too old it is (0 when fresh; an empty table counts as @max_age_minutes + 1).
SELECT
  'rides_per_minute.freshness' AS check_name,
  GREATEST(
    IFNULL(TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), MAX(emitted_at), MINUTE), @max_age_minutes + 1) - @max_age_minutes,
    0
  ) AS failures,
  'minute' AS unit
FROM `{{ project }}.{{ taxi_dataset }}.rides_per_minute`;
