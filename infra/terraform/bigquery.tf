# Datasets and tables from the one definition of each table: sql/tables.json + sql/schemas/*.json.
module "catalog" {
  source       = "./modules/catalog"
  catalog_file = "${local.repo_root}/sql/tables.json"
  schema_dir   = "${local.repo_root}/sql/schemas"
  datasets     = var.datasets
}

resource "google_bigquery_dataset" "this" {
  for_each = module.catalog.datasets

  project     = var.project
  dataset_id  = each.value
  location    = var.region
  description = "gcpipe ${each.key} tables (sql/tables.json)."

  dynamic "default_encryption_configuration" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_bigquery_table" "this" {
  for_each = module.catalog.tables

  project             = var.project
  dataset_id          = google_bigquery_dataset.this[each.value.dataset_key].dataset_id
  table_id            = each.key
  description         = each.value.description
  schema              = each.value.schema
  clustering          = length(each.value.clustering) > 0 ? each.value.clustering : null
  deletion_protection = var.deletion_protection

  dynamic "time_partitioning" {
    for_each = each.value.partition == null ? [] : [each.value.partition]
    content {
      type          = time_partitioning.value.type
      field         = time_partitioning.value.field
      expiration_ms = time_partitioning.value.expiration_ms
    }
  }

  dynamic "encryption_configuration" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      kms_key_name = encryption_configuration.value
    }
  }
}
