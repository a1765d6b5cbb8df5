-- Train the purchase model's challenger: boosted trees (XGBoost in BigQuery ML, and locally) on the same
-- training rows as the logistic regression (purchase_training, written by purchase_model.sql), so their
-- ROC curves and confusion matrices on the later first visits compare like with like.
CREATE OR REPLACE MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_tree_model`
OPTIONS (
  model_type = 'boosted_tree_classifier',
  input_label_cols = ['will_buy_on_return_visit'],
  max_iterations = 50,
  max_tree_depth = 4,
  learn_rate = 0.3,
  subsample = 1.0
)
AS
SELECT * FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_training`;
