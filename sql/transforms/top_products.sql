-- The best sellers of each product category: UNNEST the sessions' repeated hits, then each hit's repeated
-- products, and keep the @top_n products of each category by revenue (QUALIFY on a window function).
CREATE OR REPLACE TABLE `{{ project }}.{{ ecommerce_dataset }}.top_products`
AS
SELECT
  p.v2ProductCategory AS category,
  p.productSKU AS sku,
  ANY_VALUE(p.v2ProductName) AS product,
  COUNTIF(h.eCommerceAction.action_type = '2') AS detail_views,
  COUNTIF(h.eCommerceAction.action_type = '3') AS add_to_carts,
  SUM(IF(h.eCommerceAction.action_type = '6', p.productQuantity, 0)) AS units_sold,
  ROUND(SUM(IF(h.eCommerceAction.action_type = '6', p.productPrice * p.productQuantity, 0)) / 1e6, 2) AS revenue_usd,
  RANK() OVER (
    PARTITION BY p.v2ProductCategory
    ORDER BY SUM(IF(h.eCommerceAction.action_type = '6', p.productPrice * p.productQuantity, 0)) DESC
  ) AS rank_in_category
FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions` AS s,
  UNNEST(s.hits) AS h,
  UNNEST(h.product) AS p
GROUP BY category, sku
QUALIFY rank_in_category <= @top_n;
