-- ga_sessions: generated from sql/schemas/ga_sessions.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ ecommerce_dataset }}.ga_sessions` (
  fullVisitorId STRING NOT NULL,
  visitId INT64 NOT NULL,
  visitNumber INT64 NOT NULL,
  visitStartTime INT64 NOT NULL,
  date DATE NOT NULL,
  channelGrouping STRING,
  totals STRUCT<visits INT64, hits INT64, pageviews INT64, timeOnSite INT64, bounces INT64, transactions INT64, transactionRevenue INT64, newVisits INT64>,
  trafficSource STRUCT<source STRING, medium STRING, campaign STRING, referralPath STRING>,
  device STRUCT<browser STRING, operatingSystem STRING, isMobile BOOL, deviceCategory STRING>,
  geoNetwork STRUCT<continent STRING, subContinent STRING, country STRING, city STRING>,
  hits ARRAY<STRUCT<hitNumber INT64, time INT64, hour INT64, minute INT64, type STRING, isEntrance BOOL, isExit BOOL, page STRUCT<pagePath STRING, pageTitle STRING, hostname STRING>, eCommerceAction STRUCT<action_type STRING, step INT64>, product ARRAY<STRUCT<productSKU STRING, v2ProductName STRING, v2ProductCategory STRING, productPrice INT64, productQuantity INT64, productRevenue INT64, isImpression BOOL>>, transaction STRUCT<transactionId STRING, transactionRevenue INT64>>>
)
PARTITION BY date
CLUSTER BY fullVisitorId
OPTIONS (description = "E-commerce web sessions like the Google Analytics sample: one row per visit with nested totals and repeated hits.");
