# gcpipe on Google Cloud: the lake and staging buckets, the warehouse (datasets and tables from
# sql/tables.json + sql/schemas/), the ride events' Pub/Sub topic and subscription, one service account
# per workload with least-privilege roles, the workers' private network, a Dataproc autoscaling policy,
# the flex-template image repository and the Composer environment.

locals {
  repo_root      = "${path.module}/../.."
  lake_bucket    = coalesce(var.lake_bucket, "${var.project}-lake")
  staging_bucket = coalesce(var.staging_bucket, "${var.project}-staging")
  labels         = { app = "gcpipe", environment = var.environment }
  sa_emails      = { for workload, account in google_service_account.workload : workload => account.email }
  sa_members     = { for workload, email in local.sa_emails : workload => "serviceAccount:${email}" }
}

data "google_project" "this" {
  project_id = var.project
}

resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "bigquerystorage.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "composer.googleapis.com",
    "compute.googleapis.com",
    "dataflow.googleapis.com",
    "dataproc.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "storage.googleapis.com",
  ])
  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

# Who read or wrote which object: Data Access audit logs for Cloud Storage (BigQuery logs them by default).
resource "google_project_iam_audit_config" "storage" {
  project = var.project
  service = "storage.googleapis.com"

  audit_log_config {
    log_type = "DATA_READ"
  }

  audit_log_config {
    log_type = "DATA_WRITE"
  }
}
