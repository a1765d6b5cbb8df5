-- Taxi revenue and trip statistics by pickup zone and hour of day. Each pickup point is placed in its
-- zone polygon (ST_COVERS against taxi_zones); trips outside every zone are kept, as zone 'Outside the
-- zones', so the trips here add up to the trips in taxi_trips.
CREATE OR REPLACE TABLE `{{ project }}.{{ taxi_dataset }}.trips_by_zone_hour`
AS
WITH placed AS (
  SELECT
    t.*,
    (
      SELECT MIN(z.zone_id)
      FROM `{{ project }}.{{ taxi_dataset }}.taxi_zones` AS z
      WHERE ST_COVERS(ST_GEOGFROMTEXT(z.zone_wkt), ST_GEOGPOINT(t.pickup_longitude, t.pickup_latitude))
    ) AS zone_id
  FROM `{{ project }}.{{ taxi_dataset }}.taxi_trips` AS t
)
SELECT
  IFNULL(z.zone, 'Outside the zones') AS zone,
  IFNULL(z.borough, 'Unknown') AS borough,
  EXTRACT(HOUR FROM p.pickup_datetime) AS hour,
  COUNT(*) AS trips,
  SUM(p.passenger_count) AS passengers,
  ROUND(SUM(p.total_amount), 2) AS revenue,
  ROUND(AVG(p.fare_amount), 2) AS avg_fare,
  ROUND(AVG(p.trip_distance), 2) AS avg_distance_miles,
  ROUND(AVG(TIMESTAMP_DIFF(p.dropoff_datetime, p.pickup_datetime, SECOND)) / 60, 1) AS avg_minutes,
  ROUND(SAFE_DIVIDE(SUM(p.tip_amount), SUM(IF(p.payment_type = '1', p.fare_amount, 0))), 3) AS card_tip_rate
FROM placed AS p
LEFT JOIN `{{ project }}.{{ taxi_dataset }}.taxi_zones` AS z USING (zone_id)
GROUP BY zone, borough, hour;
