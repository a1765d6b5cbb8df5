-- Not-null: the columns every session needs (the emulator stores NULLs in REQUIRED columns, BigQuery's
-- streaming and DML paths can too). failures: rows with the column NULL.
SELECT 'ga_sessions.fullVisitorId_not_null' AS check_name, COUNTIF(fullVisitorId IS NULL) AS failures
FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions`
UNION ALL
SELECT 'ga_sessions.visitId_not_null', COUNTIF(visitId IS NULL)
FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions`
UNION ALL
SELECT 'ga_sessions.date_not_null', COUNTIF(date IS NULL)
FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions`
UNION ALL
SELECT 'ga_sessions.totals_pageviews_not_null', COUNTIF(totals.pageviews IS NULL)
FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions`;
