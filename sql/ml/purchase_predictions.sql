-- Score later first visits (@predict_from to @predict_to): who will buy on a return visit, and how
-- likely, into a table (the probability of label 1 read from the predicted probabilities array).
CREATE OR REPLACE TABLE `{{ project }}.{{ ecommerce_dataset }}.purchase_predictions`
PARTITION BY date
AS
SELECT
  fullVisitorId,
  visitId,
  date,
  predicted_will_buy_on_return_visit,
  (
    SELECT p.prob FROM UNNEST(predicted_will_buy_on_return_visit_probs) AS p WHERE p.label = 1
  ) AS purchase_probability,
  will_buy_on_return_visit AS actual
FROM ML.PREDICT(
  MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`,
  (
    SELECT *
    FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
    WHERE date BETWEEN @predict_from AND @predict_to
  )
);
