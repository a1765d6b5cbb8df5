-- What the purchase model learned: its standardised weights (so their sizes compare), numeric features
-- as they are and categorical ones unnested into a row per category, strongest first.
SELECT feature, category, weight
FROM (
  SELECT w.processed_input AS feature, CAST(NULL AS STRING) AS category, w.weight
  FROM ML.WEIGHTS(MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`, STRUCT(TRUE AS standardize)) AS w
  WHERE w.weight IS NOT NULL AND w.processed_input != '__INTERCEPT__'
  UNION ALL
  SELECT w.processed_input AS feature, c.category, c.weight
  FROM ML.WEIGHTS(MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`, STRUCT(TRUE AS standardize)) AS w,
    UNNEST(w.category_weights) AS c
)
ORDER BY ABS(weight) DESC, feature, category;
