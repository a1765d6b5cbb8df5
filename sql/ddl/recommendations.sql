-- recommendations: generated from sql/schemas/recommendations.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ rentals_dataset }}.recommendations` (
  user_id INT64 NOT NULL,
  acco_id INT64 NOT NULL,
  rank INT64 NOT NULL,
  prediction FLOAT64 NOT NULL,
  generated_at TIMESTAMP NOT NULL
)
CLUSTER BY user_id
OPTIONS (description = "Top accommodations per user the user has not rated, from Spark ML ALS.");
