module "lake" {
  source                  = "./modules/bucket"
  project                 = var.project
  name                    = local.lake_bucket
  location                = var.region
  versioning              = true
  noncurrent_version_days = var.lake_noncurrent_version_days
  kms_key_name            = var.kms_key_name

  depends_on = [google_project_service.apis]
}

# Dataflow and Dataproc staging and temp files expire; the flex-template specs under templates/ and the
# Spark jobs' code under code/<tag>/ (staged by `make deploy-dags`, run by the deployed DAGs) stay.
module "staging" {
  # checkov:skip=CKV_GCP_78: the staging bucket holds temp and staging files that expire within days; old versions would keep only garbage, and the templates it holds are rebuilt by `make build-templates`
  source          = "./modules/bucket"
  project         = var.project
  name            = local.staging_bucket
  location        = var.region
  expire_prefixes = ["temp/", "staging/", "dataproc/", "cloudbuild/"]
  expire_days     = var.staging_retention_days
  kms_key_name    = var.kms_key_name

  depends_on = [google_project_service.apis]
}
