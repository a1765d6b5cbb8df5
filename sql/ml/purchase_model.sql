-- Train the purchase model: a logistic regression predicting will_buy_on_return_visit from a first visit,
-- on the first visits from @train_from to @train_to. BigQuery ML holds out its own evaluation rows
-- (AUTO_SPLIT) and standardises and one-hot encodes the features itself.
CREATE OR REPLACE TABLE `{{ project }}.{{ ecommerce_dataset }}.purchase_training`
AS
SELECT * EXCEPT (fullVisitorId, visitId, date)
FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`
WHERE date BETWEEN @train_from AND @train_to;

CREATE OR REPLACE MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`
OPTIONS (model_type = 'logistic_reg', input_label_cols = ['will_buy_on_return_visit'])
AS
SELECT * FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_training`;
