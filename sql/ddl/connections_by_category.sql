-- connections_by_category: generated from sql/schemas/kdd_connections_by_category.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ kdd_dataset }}.connections_by_category` (
  attack_category STRING NOT NULL,
  connections INT64 NOT NULL,
  share FLOAT64 NOT NULL,
  labels INT64 NOT NULL
)
OPTIONS (description = "KDD Cup 99 connections per attack category: dos, probe, r2l, u2r, normal (spark_jobs.kdd_analysis).");
