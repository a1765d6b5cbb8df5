-- attack_stats: generated from sql/schemas/kdd_attack_stats.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ kdd_dataset }}.attack_stats` (
  protocol_type STRING NOT NULL,
  state STRING NOT NULL,
  connections INT64 NOT NULL,
  mean_src_bytes FLOAT64 NOT NULL,
  mean_dst_bytes FLOAT64 NOT NULL,
  mean_duration FLOAT64 NOT NULL,
  total_failed_logins INT64 NOT NULL,
  total_compromised INT64 NOT NULL,
  total_file_creations INT64 NOT NULL,
  total_root_attempts INT64 NOT NULL,
  total_root_accesses INT64 NOT NULL
)
OPTIONS (description = "KDD Cup 99 connections per protocol and state (attack or not): counts, means and totals, as the Dataproc lab computed them. Written by spark_jobs.kdd_analysis (--bq_table).");
