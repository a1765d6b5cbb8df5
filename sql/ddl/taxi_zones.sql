-- taxi_zones: generated from sql/schemas/taxi_zones.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ taxi_dataset }}.taxi_zones` (
  zone_id INT64 NOT NULL,
  zone STRING NOT NULL,
  borough STRING NOT NULL,
  zone_wkt STRING NOT NULL
)
OPTIONS (description = "Approximate NYC taxi zones as polygons (authored for gcpipe from the TLC zone names, not the TLC's shapefile), for GIS joins.");
