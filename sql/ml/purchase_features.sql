-- The purchase model's rows: every visitor's first visit, with the e-commerce lab's features (the
-- furthest funnel step read from the session's repeated hits, bounces, time on site, pageviews, traffic
-- source, medium, channel, device, country) and the label: did the visitor buy on a later visit?
CREATE OR REPLACE TABLE `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
PARTITION BY date
CLUSTER BY fullVisitorId
AS
WITH visitor_labels AS (
  SELECT
    fullVisitorId,
    IF(COUNTIF(totals.transactions > 0 AND totals.newVisits IS NULL) > 0, 1, 0) AS will_buy_on_return_visit
  FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions`
  GROUP BY fullVisitorId
)
SELECT
  s.fullVisitorId,
  s.visitId,
  s.date,
  v.will_buy_on_return_visit,
  (SELECT MAX(CAST(h.eCommerceAction.action_type AS INT64)) FROM UNNEST(s.hits) AS h) AS latest_ecommerce_progress,
  IFNULL(s.totals.bounces, 0) AS bounces,
  IFNULL(s.totals.timeOnSite, 0) AS time_on_site,
  IFNULL(s.totals.pageviews, 0) AS pageviews,
  s.trafficSource.source AS source,
  s.trafficSource.medium AS medium,
  s.channelGrouping AS channel_grouping,
  s.device.deviceCategory AS device_category,
  IFNULL(s.geoNetwork.country, '') AS country
FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions` AS s
JOIN visitor_labels AS v USING (fullVisitorId)
WHERE s.totals.newVisits = 1;
