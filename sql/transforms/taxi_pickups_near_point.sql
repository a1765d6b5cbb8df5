-- Taxi pickups within @radius_m metres of a point (@longitude, @latitude), nearest first: ST_DWITHIN
-- selects them, ST_DISTANCE measures how far each is (metres on the sphere).
SELECT
  pickup_datetime,
  vendor_id,
  passenger_count,
  trip_distance,
  total_amount,
  ROUND(ST_DISTANCE(ST_GEOGPOINT(pickup_longitude, pickup_latitude), ST_GEOGPOINT(@longitude, @latitude)), 1)
    AS metres_away
FROM `{{ project }}.{{ taxi_dataset }}.taxi_trips`
WHERE ST_DWITHIN(ST_GEOGPOINT(pickup_longitude, pickup_latitude), ST_GEOGPOINT(@longitude, @latitude), @radius_m)
ORDER BY metres_away, pickup_datetime;
