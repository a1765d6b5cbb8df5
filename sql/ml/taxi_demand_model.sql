-- Taxi demand per pickup zone: hourly pickups in each zone (each pickup placed in its zone polygon, as
-- taxi_trips_by_zone_hour does; hours without a pickup count 0, so every zone's series is on the same
-- hourly grid), then one ARIMA_PLUS model for all zones at once (time_series_id_col), with the daily
-- season that hourly data allows, forecasting a day ahead.
CREATE OR REPLACE TABLE `{{ project }}.{{ taxi_dataset }}.pickups_by_zone_hour`
AS
WITH placed AS (
  SELECT
    TIMESTAMP_TRUNC(t.pickup_datetime, HOUR) AS pickup_hour,
    (
      SELECT MIN(z.zone_id)
      FROM `{{ project }}.{{ taxi_dataset }}.taxi_zones` AS z
      WHERE ST_COVERS(ST_GEOGFROMTEXT(z.zone_wkt), ST_GEOGPOINT(t.pickup_longitude, t.pickup_latitude))
    ) AS zone_id
  FROM `{{ project }}.{{ taxi_dataset }}.taxi_trips` AS t
),
counted AS (
  SELECT IFNULL(z.zone, 'Outside the zones') AS zone, p.pickup_hour, COUNT(*) AS pickups
  FROM placed AS p
  LEFT JOIN `{{ project }}.{{ taxi_dataset }}.taxi_zones` AS z USING (zone_id)
  GROUP BY zone, pickup_hour
),
hours AS (
  SELECT pickup_hour
  FROM UNNEST(
    GENERATE_TIMESTAMP_ARRAY(
      (SELECT MIN(pickup_hour) FROM counted), (SELECT MAX(pickup_hour) FROM counted), INTERVAL 1 HOUR
    )
  ) AS pickup_hour
)
SELECT zones.zone, hours.pickup_hour, IFNULL(c.pickups, 0) AS pickups
FROM (SELECT DISTINCT zone FROM counted) AS zones
CROSS JOIN hours
LEFT JOIN counted AS c ON c.zone = zones.zone AND c.pickup_hour = hours.pickup_hour;

CREATE OR REPLACE MODEL `{{ project }}.{{ taxi_dataset }}.taxi_demand_model`
OPTIONS (
  model_type = 'arima_plus',
  time_series_timestamp_col = 'pickup_hour',
  time_series_data_col = 'pickups',
  time_series_id_col = 'zone',
  data_frequency = 'HOURLY',
  horizon = 24,
  auto_arima_max_order = 2
)
AS
SELECT zone, pickup_hour, pickups FROM `{{ project }}.{{ taxi_dataset }}.pickups_by_zone_hour`;
