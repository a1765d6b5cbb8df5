-- Segments of the KDD Cup 99 connections by their traffic aggregates (the counts and error rates over the
-- last two seconds and the last 100 connections to the same host, and the bytes sent, on a log scale):
-- a k-means model of 4 clusters, the features standardised, for ML.DETECT_ANOMALIES to flag the
-- connections furthest from every segment (kdd_rare_connections.sql). The features are declared once, in
-- TRANSFORM: ML.DETECT_ANOMALIES computes them again from the raw columns.
CREATE OR REPLACE MODEL `{{ project }}.{{ kdd_dataset }}.connection_clusters`
TRANSFORM (
  LN(1 + src_bytes) AS log_src_bytes,
  LN(1 + dst_bytes) AS log_dst_bytes,
  count,
  srv_count,
  serror_rate,
  rerror_rate,
  same_srv_rate,
  diff_srv_rate,
  dst_host_count,
  dst_host_srv_count,
  dst_host_same_srv_rate,
  dst_host_serror_rate,
  dst_host_rerror_rate
)
OPTIONS (
  model_type = 'kmeans',
  num_clusters = 4,
  kmeans_init_method = 'KMEANS++',
  standardize_features = TRUE,
  max_iterations = 20
)
AS
SELECT *
FROM `{{ project }}.{{ kdd_dataset }}.kdd_connections`;
