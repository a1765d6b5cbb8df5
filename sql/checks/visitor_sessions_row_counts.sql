-- Row-count conservation: the denormalised visitor_sessions holds every session of ga_sessions, once, and
-- every visitor. failures: how many sessions (or visitors) are missing or extra.
WITH source AS (
  SELECT COUNT(*) AS sessions, COUNT(DISTINCT fullVisitorId) AS visitors
  FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions`
),
denormalised AS (
  SELECT SUM(ARRAY_LENGTH(sessions)) AS sessions, COUNT(*) AS visitors
  FROM `{{ project }}.{{ ecommerce_dataset }}.visitor_sessions`
)
SELECT
  'visitor_sessions.sessions_conserved' AS check_name,
  ABS(source.sessions - IFNULL(denormalised.sessions, 0)) AS failures,
  'session' AS unit
FROM source, denormalised
UNION ALL
SELECT 'visitor_sessions.visitors_conserved', ABS(source.visitors - denormalised.visitors), 'visitor'
FROM source, denormalised;
