-- How well the purchase model ranks later first visits (@eval_from to @eval_to) it was not trained on,
-- graded by ROC AUC as the e-commerce lab grades it (NaN when the rows hold buyers only, or none).
SELECT
  ROUND(precision, 4) AS precision,
  ROUND(recall, 4) AS recall,
  ROUND(accuracy, 4) AS accuracy,
  ROUND(f1_score, 4) AS f1_score,
  ROUND(log_loss, 4) AS log_loss,
  ROUND(roc_auc, 4) AS roc_auc,
  CASE
    WHEN IS_NAN(roc_auc) THEN 'unmeasured: the rows hold one label only'
    WHEN roc_auc > 0.9 THEN 'good'
    WHEN roc_auc > 0.8 THEN 'fair'
    WHEN roc_auc > 0.7 THEN 'decent'
    WHEN roc_auc > 0.6 THEN 'not great'
    ELSE 'poor'
  END AS model_quality
FROM ML.EVALUATE(
  MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`,
  (
    SELECT * EXCEPT (fullVisitorId, visitId, date)
    FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
    WHERE date BETWEEN @eval_from AND @eval_to
  )
);
