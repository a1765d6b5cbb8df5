-- One row per visitor, their sessions nested in visit order: the denormalised shape BigQuery prefers to a
-- visitors table joined to a sessions table (ARRAY_AGG of STRUCTs; no join when it is read).
CREATE OR REPLACE TABLE `{{ project }}.{{ ecommerce_dataset }}.visitor_sessions`
CLUSTER BY fullVisitorId
AS
SELECT
  fullVisitorId,
  COUNT(*) AS visits,
  MIN(date) AS first_visit_date,
  MAX(date) AS last_visit_date,
  SUM(IFNULL(totals.transactions, 0)) AS transactions,
  ROUND(SUM(IFNULL(totals.transactionRevenue, 0)) / 1e6, 2) AS revenue_usd,
  ARRAY_AGG(
    STRUCT(
      visitId AS visitId,
      visitNumber AS visitNumber,
      date AS date,
      channelGrouping AS channelGrouping,
      device.deviceCategory AS deviceCategory,
      totals.pageviews AS pageviews,
      IFNULL(totals.timeOnSite, 0) AS timeOnSite,
      IFNULL(totals.transactions, 0) AS transactions,
      ROUND(IFNULL(totals.transactionRevenue, 0) / 1e6, 2) AS revenue_usd,
      ARRAY_LENGTH(hits) AS hits
    )
    ORDER BY visitNumber
  ) AS sessions
FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions`
GROUP BY fullVisitorId;
