-- The next day's hourly pickups in each zone (ML.FORECAST of taxi_demand_model), with the 90 %
-- prediction interval, into a table beside the history (pickups_by_zone_hour) to plot them together.
CREATE OR REPLACE TABLE `{{ project }}.{{ taxi_dataset }}.taxi_demand_forecast`
AS
SELECT
  zone,
  forecast_timestamp,
  forecast_value,
  standard_error,
  confidence_level,
  prediction_interval_lower_bound,
  prediction_interval_upper_bound
FROM ML.FORECAST(
  MODEL `{{ project }}.{{ taxi_dataset }}.taxi_demand_model`,
  STRUCT(24 AS horizon, 0.9 AS confidence_level)
);
