# The warehouse's tables as Terraform sees them, read from the one definition: sql/tables.json (where
# each table lives and how it is laid out) and sql/schemas/<schema>.json (its BigQuery JSON schema).
# No provider and no resource: `terraform apply` of this module alone runs offline, which is how the
# tests compare what Terraform would create with what gcpipe.core.schemas reads.

variable "catalog_file" {
  description = "Path of sql/tables.json."
  type        = string
}

variable "schema_dir" {
  description = "Path of sql/schemas/."
  type        = string
}

variable "datasets" {
  description = "Dataset name per dataset key of the catalog; a key not given keeps its own name."
  type        = map(string)
  default     = {}
}

locals {
  # Keys starting with _ are comments.
  specs = { for name, spec in jsondecode(file(var.catalog_file)) : name => spec if substr(name, 0, 1) != "_" }

  datasets = { for key in distinct([for spec in values(local.specs) : spec.dataset]) : key => lookup(var.datasets, key, key) }

  tables = {
    for name, spec in local.specs : name => {
      dataset_key = spec.dataset
      dataset_id  = local.datasets[spec.dataset]
      schema      = file("${var.schema_dir}/${spec.schema}.json")
      description = try(spec.description, "")
      clustering  = try(spec.clustering, [])
      partition = try(spec.partition, null) == null ? null : {
        field         = spec.partition.field
        type          = try(spec.partition.granularity, "DAY")
        expiration_ms = try(spec.partition.expiration_days, null) == null ? null : spec.partition.expiration_days * 86400000
      }
    }
  }
}

output "datasets" {
  description = "Dataset key -> dataset name."
  value       = local.datasets
}

output "tables" {
  description = "Table name -> dataset, schema (JSON text of sql/schemas/<schema>.json), partition, clustering."
  value       = local.tables
}
