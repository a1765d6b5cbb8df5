-- ride_dead_letter: generated from sql/schemas/ride_dead_letter.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ taxi_dataset }}.ride_dead_letter` (
  raw STRING,
  reason STRING NOT NULL,
  received_at TIMESTAMP NOT NULL,
  message_id STRING,
  attributes STRING
)
PARTITION BY TIMESTAMP_TRUNC(received_at, DAY)
OPTIONS (partition_expiration_days = 30, description = "Ride messages the streaming pipeline rejected, with the raw payload and the reason.");
