-- How the purchase model's training went, iteration by iteration: loss on the training and the held-out
-- rows, the step taken, and the time.
SELECT iteration, loss, eval_loss, learning_rate, duration_ms
FROM ML.TRAINING_INFO(MODEL `{{ project }}.{{ ecommerce_dataset }}.purchase_model`)
ORDER BY iteration;
