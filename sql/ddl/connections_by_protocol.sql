-- connections_by_protocol: generated from sql/schemas/kdd_connections_by_protocol.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ kdd_dataset }}.connections_by_protocol` (
  protocol_type STRING NOT NULL,
  connections INT64 NOT NULL,
  share FLOAT64 NOT NULL
)
OPTIONS (description = "KDD Cup 99 connections per protocol_type (spark_jobs.kdd_analysis).");
