-- rides_by_area: generated from sql/schemas/rides_by_area.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ taxi_dataset }}.rides_by_area` (
  window_start TIMESTAMP NOT NULL,
  window_end TIMESTAMP NOT NULL,
  area STRING NOT NULL,
  center_latitude FLOAT64 NOT NULL,
  center_longitude FLOAT64 NOT NULL,
  pickups INT64 NOT NULL,
  passengers INT64 NOT NULL,
  pane_timing STRING NOT NULL,
  pane_index INT64 NOT NULL,
  window_key STRING NOT NULL,
  emitted_at TIMESTAMP NOT NULL
)
PARTITION BY TIMESTAMP_TRUNC(window_start, DAY)
CLUSTER BY area, window_key
OPTIONS (partition_expiration_days = 30, description = "Pickups per geohash area in sliding 5-minute windows every minute, for the heat map; one row per pane; the latest emitted_at of a window_key wins.");
