-- Each session's way down the shop's funnel, read from its repeated hits (SELECT AS STRUCT over
-- UNNEST), beside the visitor's earlier visits (window functions over the visitor's sessions).
CREATE OR REPLACE TABLE `{{ project }}.{{ ecommerce_dataset }}.session_funnel`
PARTITION BY date
CLUSTER BY fullVisitorId
AS
WITH sessions AS (
  SELECT
    s.fullVisitorId,
    s.visitId,
    s.visitNumber,
    s.date,
    s.channelGrouping,
    (
      SELECT AS STRUCT
        MAX(CAST(h.eCommerceAction.action_type AS INT64)) AS furthest_step,
        COUNTIF(h.type = 'PAGE') AS pages,
        COUNTIF(h.eCommerceAction.action_type = '3') AS add_to_cart_hits,
        MAX(h.time) / 1000 AS seconds_to_last_hit
      FROM UNNEST(s.hits) AS h
    ) AS funnel
  FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions` AS s
)
SELECT
  fullVisitorId,
  visitId,
  visitNumber,
  date,
  channelGrouping,
  funnel,
  CASE funnel.furthest_step
    WHEN 0 THEN 'browse' WHEN 1 THEN 'product list' WHEN 2 THEN 'product detail'
    WHEN 3 THEN 'add to cart' WHEN 4 THEN 'remove from cart' WHEN 5 THEN 'checkout'
    WHEN 6 THEN 'purchase' ELSE 'other'
  END AS furthest_step_name,
  LAG(date) OVER visitor_visits AS previous_visit_date,
  DATE_DIFF(date, LAG(date) OVER visitor_visits, DAY) AS days_since_previous_visit,
  MAX(funnel.furthest_step) OVER (
    PARTITION BY fullVisitorId ORDER BY visitNumber ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
  ) AS furthest_step_before,
  COUNT(*) OVER (PARTITION BY fullVisitorId) AS visitor_sessions
FROM sessions
WINDOW visitor_visits AS (PARTITION BY fullVisitorId ORDER BY visitNumber);
