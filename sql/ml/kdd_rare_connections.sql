-- The rarest KDD Cup 99 connections: ML.DETECT_ANOMALIES of the connection_clusters model flags the
-- 1 % of connections furthest from their cluster's centre (normalized_distance: the
-- distance over the cluster's typical one), kept with what identifies them (protocol, service, flag and
-- the label, which the model never saw), rarest first. The model's TRANSFORM computes its features.
CREATE OR REPLACE TABLE `{{ project }}.{{ kdd_dataset }}.rare_connections`
AS
SELECT centroid_id, normalized_distance, protocol_type, service, flag, label
FROM ML.DETECT_ANOMALIES(
  MODEL `{{ project }}.{{ kdd_dataset }}.connection_clusters`,
  STRUCT(0.01 AS contamination),
  TABLE `{{ project }}.{{ kdd_dataset }}.kdd_connections`
)
WHERE is_anomaly;
