-- Uniqueness: a visit (fullVisitorId, visitId) is loaded once. failures: visits seen more than once.
SELECT 'ga_sessions.unique_visit' AS check_name, COUNT(*) AS failures
FROM (
  SELECT fullVisitorId, visitId
  FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions`
  GROUP BY fullVisitorId, visitId
  HAVING COUNT(*) > 1
);
