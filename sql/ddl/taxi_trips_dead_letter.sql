-- taxi_trips_dead_letter: generated from sql/schemas/dead_letter.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ taxi_dataset }}.taxi_trips_dead_letter` (
  source STRING NOT NULL,
  line INT64,
  raw STRING,
  reason STRING NOT NULL,
  loaded_at TIMESTAMP NOT NULL,
  partition_date DATE
)
PARTITION BY TIMESTAMP_TRUNC(loaded_at, DAY)
CLUSTER BY source
OPTIONS (partition_expiration_days = 90, description = "Taxi trip records rejected by the CSV ingestion, with the reason.");
