-- connections_by_label: generated from sql/schemas/kdd_connections_by_label.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ kdd_dataset }}.connections_by_label` (
  label STRING NOT NULL,
  attack_category STRING NOT NULL,
  connections INT64 NOT NULL,
  share FLOAT64 NOT NULL
)
OPTIONS (description = "KDD Cup 99 connections per label and its attack category (spark_jobs.kdd_analysis).");
