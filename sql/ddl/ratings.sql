-- ratings: generated from sql/schemas/ratings.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ rentals_dataset }}.ratings` (
  user_id INT64 NOT NULL,
  acco_id INT64 NOT NULL,
  rating INT64 NOT NULL
)
OPTIONS (description = "Ratings users gave accommodations (the lab's Rating table).");
