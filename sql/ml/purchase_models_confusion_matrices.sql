-- Both purchase models' confusion matrices on the later first visits (@eval_from to @eval_to) at
-- threshold 0.5: per model and actual label (expected_label), how many visits each predicted label got
-- (_0: predicted no purchase, _1: predicted a purchase).
SELECT 'logistic_reg' AS model, expected_label, _0, _1
FROM ML.CONFUSION_MATRIX(
  MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`,
  (
    SELECT * EXCEPT (fullVisitorId, visitId, date)
    FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
    WHERE date BETWEEN @eval_from AND @eval_to
  ),
  STRUCT(0.5 AS threshold)
)
UNION ALL
SELECT 'boosted_tree_classifier' AS model, expected_label, _0, _1
FROM ML.CONFUSION_MATRIX(
  MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_tree_model`,
  (
    SELECT * EXCEPT (fullVisitorId, visitId, date)
    FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
    WHERE date BETWEEN @eval_from AND @eval_to
  ),
  STRUCT(0.5 AS threshold)
)
ORDER BY model, expected_label;
