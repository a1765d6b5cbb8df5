-- top_attacked_services: generated from sql/schemas/kdd_top_attacked_services.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ kdd_dataset }}.top_attacked_services` (
  rank INT64 NOT NULL,
  service STRING NOT NULL,
  attacks INT64 NOT NULL,
  connections INT64 NOT NULL,
  attack_share FLOAT64 NOT NULL,
  top_category STRING NOT NULL
)
OPTIONS (description = "The ten services with the most attack connections (spark_jobs.kdd_analysis).");
