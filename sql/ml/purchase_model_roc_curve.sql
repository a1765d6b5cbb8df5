-- The purchase model's ROC curve on later first visits (@eval_from to @eval_to): how many buyers it finds
-- (recall) for how many false alarms, at each probability threshold, to pick the threshold a campaign
-- can afford. Thresholds: the percentiles of the predicted probabilities.
SELECT threshold, recall, false_positive_rate, true_positives, false_positives, true_negatives, false_negatives
FROM ML.ROC_CURVE(
  MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`,
  (
    SELECT * EXCEPT (fullVisitorId, visitId, date)
    FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
    WHERE date BETWEEN @eval_from AND @eval_to
  )
)
ORDER BY threshold DESC;
