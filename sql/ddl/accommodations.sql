-- accommodations: generated from sql/schemas/accommodations.json and sql/tables.json by
-- `gcpipe sql ddl --write`; edit those, not this file.
CREATE TABLE IF NOT EXISTS `{{ project }}.{{ rentals_dataset }}.accommodations` (
  id INT64 NOT NULL,
  title STRING NOT NULL,
  location STRING NOT NULL,
  price INT64 NOT NULL,
  rooms INT64 NOT NULL,
  rating FLOAT64,
  type STRING NOT NULL
)
OPTIONS (description = "Rentals on offer (the recommendation lab's Accommodation table).");
