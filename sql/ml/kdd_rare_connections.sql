-- The rarest KDD Cup 99 connections: ML.DETECT_ANOMALIES of the connection_clusters model flags the
-- 1 % of connections furthest from their cluster's centre (normalized_distance: the
-- distance over the cluster's typical one), kept with what identifies them (protocol, service, flag and
-- the label, which the model never saw), rarest first.
CREATE OR REPLACE TABLE `{{ project }}.{{ kdd_dataset }}.rare_connections`
AS
SELECT centroid_id, normalized_distance, protocol_type, service, flag, label
FROM ML.DETECT_ANOMALIES(
  MODEL `{{ project }}.{{ kdd_dataset }}.connection_clusters`,
  STRUCT(0.01 AS contamination),
  (
    SELECT
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
      dst_host_rerror_rate,
      protocol_type,
      service,
      flag,
      label
    FROM `{{ project }}.{{ kdd_dataset }}.kdd_connections`
  )
)
WHERE is_anomaly;
