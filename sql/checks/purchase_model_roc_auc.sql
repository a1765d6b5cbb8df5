-- Quality gate of the purchase model: on the later first visits (@eval_from to @eval_to) it was not trained
-- on, its ROC AUC is at least @min_roc_auc (cast, so it may come as a string). A model that cannot be
-- measured there (NaN: the rows hold one label only) does not pass.
-- failures: 1 when the model falls short, else 0.
SELECT
  'purchase_model.roc_auc_at_least_the_minimum' AS check_name,
  COUNTIF(IS_NAN(roc_auc) OR roc_auc < CAST(@min_roc_auc AS FLOAT64)) AS failures
FROM ML.EVALUATE(
  MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`,
  (
    SELECT * EXCEPT (fullVisitorId, visitId, date)
    FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
    WHERE date BETWEEN @eval_from AND @eval_to
  )
);
