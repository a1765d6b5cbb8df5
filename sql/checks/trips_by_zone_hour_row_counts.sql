-- Row-count conservation: every trip of taxi_trips is counted in exactly one (zone, hour) of
-- trips_by_zone_hour, and its revenue with it. failures: trips (or cents of revenue) missing or extra.
WITH source AS (
  SELECT COUNT(*) AS trips, CAST(ROUND(SUM(total_amount) * 100) AS INT64) AS revenue_cents
  FROM `{{ project }}.{{ taxi_dataset }}.taxi_trips`
),
summary AS (
  SELECT SUM(trips) AS trips, CAST(ROUND(SUM(revenue) * 100) AS INT64) AS revenue_cents
  FROM `{{ project }}.{{ taxi_dataset }}.trips_by_zone_hour`
)
SELECT
  'trips_by_zone_hour.trips_conserved' AS check_name,
  ABS(source.trips - IFNULL(summary.trips, 0)) AS failures,
  'trip' AS unit
FROM source, summary
UNION ALL
SELECT
  'trips_by_zone_hour.revenue_conserved', ABS(source.revenue_cents - IFNULL(summary.revenue_cents, 0)), 'cent'
FROM source, summary;
