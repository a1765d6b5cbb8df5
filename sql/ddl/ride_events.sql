-- ride_events: generated from sql/schemas/ride_events.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ taxi_dataset }}.ride_events` (
  ride_id STRING NOT NULL,
  point_idx INT64 NOT NULL,
  latitude FLOAT64 NOT NULL,
  longitude FLOAT64 NOT NULL,
  timestamp TIMESTAMP NOT NULL,
  meter_reading FLOAT64 NOT NULL,
  meter_increment FLOAT64 NOT NULL,
  ride_status STRING NOT NULL,
  passenger_count INT64 NOT NULL,
  message_id STRING,
  event_id STRING,
  published_at TIMESTAMP
)
PARTITION BY TIMESTAMP_TRUNC(timestamp, DAY)
CLUSTER BY ride_id
OPTIONS (partition_expiration_days = 30, description = "Valid taxi ride events from the real-time feed, de-duplicated by event id.");
