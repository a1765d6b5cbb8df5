-- rides_per_minute: generated from sql/schemas/rides_per_minute.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ taxi_dataset }}.rides_per_minute` (
  window_start TIMESTAMP NOT NULL,
  window_end TIMESTAMP NOT NULL,
  pickups INT64 NOT NULL,
  dropoffs INT64 NOT NULL,
  passengers INT64 NOT NULL,
  revenue FLOAT64 NOT NULL,
  active_rides INT64 NOT NULL,
  events INT64 NOT NULL,
  pane_timing STRING NOT NULL,
  pane_index INT64 NOT NULL,
  window_key STRING NOT NULL,
  emitted_at TIMESTAMP NOT NULL
)
PARTITION BY TIMESTAMP_TRUNC(window_start, DAY)
CLUSTER BY window_key
OPTIONS (partition_expiration_days = 30, description = "Ride counts, passengers and revenue per 1-minute event-time window; one row per pane; the latest emitted_at of a window_key wins.");
