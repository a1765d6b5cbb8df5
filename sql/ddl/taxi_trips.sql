-- taxi_trips: generated from sql/schemas/taxi_trips.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ taxi_dataset }}.taxi_trips` (
  vendor_id STRING NOT NULL,
  pickup_datetime TIMESTAMP NOT NULL,
  dropoff_datetime TIMESTAMP NOT NULL,
  passenger_count INT64,
  trip_distance FLOAT64 NOT NULL,
  pickup_longitude FLOAT64,
  pickup_latitude FLOAT64,
  rate_code STRING,
  store_and_fwd_flag STRING,
  dropoff_longitude FLOAT64,
  dropoff_latitude FLOAT64,
  payment_type STRING,
  fare_amount FLOAT64 NOT NULL,
  extra FLOAT64,
  mta_tax FLOAT64,
  tip_amount FLOAT64,
  tolls_amount FLOAT64,
  imp_surcharge FLOAT64,
  total_amount FLOAT64 NOT NULL
)
PARTITION BY TIMESTAMP_TRUNC(pickup_datetime, DAY)
CLUSTER BY vendor_id, payment_type
OPTIONS (description = "NYC TLC yellow taxi trips, one row per trip, as loaded from the TLC CSV files.");
