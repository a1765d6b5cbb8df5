-- Both purchase models' ROC curves on the later first visits (@eval_from to @eval_to), one row per model
-- and threshold, to draw on one plot: the logistic regression (purchase_model) and the boosted trees
-- (purchase_tree_model), each row with its model's ROC AUC on the same visits (ML.EVALUATE's roc_auc).
SELECT 'logistic_reg' AS model, curve.threshold, curve.recall, curve.false_positive_rate, evaluated.roc_auc
FROM ML.ROC_CURVE(
  MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`,
  (
    SELECT * EXCEPT (fullVisitorId, visitId, date)
    FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
    WHERE date BETWEEN @eval_from AND @eval_to
  )
) AS curve
CROSS JOIN ML.EVALUATE(
  MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`,
  (
    SELECT * EXCEPT (fullVisitorId, visitId, date)
    FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
    WHERE date BETWEEN @eval_from AND @eval_to
  )
) AS evaluated
UNION ALL
SELECT 'boosted_tree_classifier' AS model, curve.threshold, curve.recall, curve.false_positive_rate, evaluated.roc_auc
FROM ML.ROC_CURVE(
  MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_tree_model`,
  (
    SELECT * EXCEPT (fullVisitorId, visitId, date)
    FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
    WHERE date BETWEEN @eval_from AND @eval_to
  )
) AS curve
CROSS JOIN ML.EVALUATE(
  MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_tree_model`,
  (
    SELECT * EXCEPT (fullVisitorId, visitId, date)
    FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
    WHERE date BETWEEN @eval_from AND @eval_to
  )
) AS evaluated
ORDER BY model, threshold DESC;
