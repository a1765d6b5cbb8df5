-- NYC taxi zones, approximated: one rectangle per zone around where the TLC's busiest pickup zones are
-- (authored for gcpipe from the zone names; not the TLC's shapefile, which cannot be downloaded here).
-- Zones do not overlap, so a point lies in at most one (ties on a shared edge: the lowest zone_id).
-- Polygons are WKT text; ST_GEOGFROMTEXT(zone_wkt) makes them GEOGRAPHY. Idempotent: it replaces the rows.
DELETE FROM `{{ project }}.{{ taxi_dataset }}.taxi_zones` WHERE TRUE;

INSERT INTO `{{ project }}.{{ taxi_dataset }}.taxi_zones` (zone_id, zone, borough, zone_wkt)
VALUES
  (1, 'Financial District', 'Manhattan', 'POLYGON((-74.020 40.700, -73.990 40.700, -73.990 40.720, -74.020 40.720, -74.020 40.700))'),
  (2, 'Greenwich Village and Chelsea', 'Manhattan', 'POLYGON((-74.015 40.720, -73.970 40.720, -73.970 40.745, -74.015 40.745, -74.015 40.720))'),
  (3, 'Midtown', 'Manhattan', 'POLYGON((-74.010 40.745, -73.960 40.745, -73.960 40.765, -74.010 40.765, -74.010 40.745))'),
  (4, 'Upper West Side', 'Manhattan', 'POLYGON((-74.000 40.765, -73.967 40.765, -73.967 40.805, -74.000 40.805, -74.000 40.765))'),
  (5, 'Upper East Side', 'Manhattan', 'POLYGON((-73.967 40.765, -73.930 40.765, -73.930 40.790, -73.967 40.790, -73.967 40.765))'),
  (6, 'East Harlem', 'Manhattan', 'POLYGON((-73.967 40.790, -73.925 40.790, -73.925 40.805, -73.967 40.805, -73.967 40.790))'),
  (7, 'Central Harlem', 'Manhattan', 'POLYGON((-73.965 40.805, -73.925 40.805, -73.925 40.830, -73.965 40.830, -73.965 40.805))'),
  (8, 'Downtown Brooklyn', 'Brooklyn', 'POLYGON((-74.000 40.670, -73.955 40.670, -73.955 40.700, -74.000 40.700, -74.000 40.670))'),
  (9, 'JFK Airport', 'Queens', 'POLYGON((-73.830 40.620, -73.745 40.620, -73.745 40.665, -73.830 40.665, -73.830 40.620))'),
  (10, 'LaGuardia Airport', 'Queens', 'POLYGON((-73.890 40.765, -73.855 40.765, -73.855 40.790, -73.890 40.790, -73.890 40.765))');
