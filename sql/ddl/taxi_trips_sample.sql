-- taxi_trips_sample: generated from sql/schemas/taxi_trips_sample.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ taxi_dataset }}.taxi_trips_sample` (
  pickup TIMESTAMP NOT NULL,
  dropoff TIMESTAMP NOT NULL,
  passengers INT64,
  distance FLOAT64 NOT NULL,
  fare FLOAT64 NOT NULL,
  tip FLOAT64,
  tolls FLOAT64,
  total FLOAT64 NOT NULL,
  color STRING NOT NULL,
  payment STRING,
  pickup_zone STRING,
  dropoff_zone STRING,
  pickup_borough STRING,
  dropoff_borough STRING
)
PARTITION BY TIMESTAMP_TRUNC(pickup, DAY)
CLUSTER BY color, pickup_borough
OPTIONS (description = "NYC TLC yellow and green trips with zones and boroughs, as in the seaborn taxis sample of March 2019.");
