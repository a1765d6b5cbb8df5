-- How well the purchase model does on later first visits (@eval_from to @eval_to) it was not trained on.
-- model_quality grades the ranking alone, by ROC AUC, as the e-commerce lab does (NaN when the rows hold
-- buyers only, or none); verdict also says how many buyers the 0.5 threshold finds (recall): buyers are
-- rare, so a model can rank them well and still flag few of them.
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
  END AS model_quality,
  CASE
    WHEN IS_NAN(roc_auc) THEN 'unmeasured: the rows hold one label only'
    ELSE CONCAT(
      CASE WHEN roc_auc > 0.8 THEN 'ranks buyers well' WHEN roc_auc > 0.7 THEN 'ranks buyers fairly'
        ELSE 'ranks buyers poorly' END,
      CASE WHEN recall >= 0.7 THEN '; finds most buyers at threshold 0.5'
        WHEN recall >= 0.4 THEN '; finds some buyers at threshold 0.5'
        ELSE '; misses most buyers at threshold 0.5 (a lower one finds more)' END
    )
  END AS verdict
FROM ML.EVALUATE(
  MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`,
  (
    SELECT * EXCEPT (fullVisitorId, visitId, date)
    FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
    WHERE date BETWEEN @eval_from AND @eval_to
  )
);
