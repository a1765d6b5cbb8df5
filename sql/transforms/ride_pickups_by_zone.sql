-- Where the real-time feed's rides start: pickup events per zone polygon and borough (ST_COVERS), with
-- the zone's area and centre (GEOGRAPHY is returned as text, which every client reads).
SELECT
  z.borough,
  z.zone,
  COUNT(*) AS pickups,
  COUNT(DISTINCT e.ride_id) AS rides,
  SUM(e.passenger_count) AS passengers,
  ROUND(ANY_VALUE(ST_AREA(ST_GEOGFROMTEXT(z.zone_wkt))) / 1e6, 2) AS zone_km2,
  ANY_VALUE(ST_ASTEXT(ST_CENTROID(ST_GEOGFROMTEXT(z.zone_wkt)))) AS zone_centre
FROM `{{ project }}.{{ taxi_dataset }}.ride_events` AS e
JOIN `{{ project }}.{{ taxi_dataset }}.taxi_zones` AS z
  ON ST_COVERS(ST_GEOGFROMTEXT(z.zone_wkt), ST_GEOGPOINT(e.longitude, e.latitude))
WHERE e.ride_status = 'pickup'
GROUP BY z.borough, z.zone
ORDER BY pickups DESC, z.zone;
