-- Both purchase models' ROC curves on the later first visits (@eval_from to @eval_to), one row per model
-- and threshold, to draw on one plot: the logistic regression (purchase_model) and the boosted trees
-- (purchase_tree_model).
SELECT 'logistic_reg' AS model, threshold, recall, false_positive_rate
FROM ML.ROC_CURVE(
  MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`,
  (
    SELECT * EXCEPT (fullVisitorId, visitId, date)
    FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
    WHERE date BETWEEN @eval_from AND @eval_to
  )
)
UNION ALL
SELECT 'boosted_tree_classifier' AS model, threshold, recall, false_positive_rate
FROM ML.ROC_CURVE(
  MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_tree_model`,
  (
    SELECT * EXCEPT (fullVisitorId, visitId, date)
    FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
    WHERE date BETWEEN @eval_from AND @eval_to
  )
)
ORDER BY model, threshold DESC;
