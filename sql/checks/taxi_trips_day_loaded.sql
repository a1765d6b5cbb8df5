-- The day's load (@partition_date) is there and clean enough: its partition of taxi_trips holds trips, and
-- at most @max_dead_letter_percent percent of the day's records were dead-lettered. Both values are cast,
-- so they may come typed or as strings (an Airflow run's date and params).
-- failures: 1 when the day holds no trip; otherwise the dead letters beyond the allowance.
WITH day AS (
  SELECT CAST(@partition_date AS DATE) AS partition_date
),
loaded AS (
  SELECT COUNT(*) AS trips
  FROM `{{ project }}.{{ taxi_dataset }}.taxi_trips`, day
  WHERE pickup_datetime >= TIMESTAMP(day.partition_date)
    AND pickup_datetime < TIMESTAMP(DATE_ADD(day.partition_date, INTERVAL 1 DAY))
),
rejected AS (
  SELECT COUNT(*) AS records
  FROM `{{ project }}.{{ taxi_dataset }}.taxi_trips_dead_letter` AS d, day
  WHERE d.partition_date = day.partition_date
)
SELECT 'taxi_trips.day_loaded' AS check_name, IF(loaded.trips = 0, 1, 0) AS failures, 'empty day' AS unit
FROM loaded
UNION ALL
SELECT
  'taxi_trips.dead_letter_rate',
  GREATEST(
    rejected.records - CAST(
      FLOOR((loaded.trips + rejected.records) * CAST(@max_dead_letter_percent AS FLOAT64) / 100) AS INT64
    ),
    0
  ),
  'dead letter'
FROM loaded, rejected;
