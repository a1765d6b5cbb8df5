-- The purchase model's inputs as it saw them in training: ranges, means, NULLs and category counts.
SELECT *
FROM ML.FEATURE_INFO(MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`)
ORDER BY input;
