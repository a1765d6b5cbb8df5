# One service account per workload, each with the least it needs: project roles only where a service has
# no narrower resource, everything else on the bucket, dataset, subscription or repository itself.
# No primitive role (owner, editor, viewer) anywhere: tests/unit/test_terraform.py checks it.

resource "google_service_account" "workload" {
  for_each = var.service_accounts

  project      = var.project
  account_id   = each.value
  display_name = "gcpipe ${each.key}"
  description  = "Runs gcpipe's ${each.key} workloads."

  depends_on = [google_project_service.apis]
}

locals {
  project_roles = {
    dataflow = ["roles/dataflow.worker", "roles/bigquery.jobUser"]
    dataproc = ["roles/dataproc.worker", "roles/bigquery.jobUser"]
    # Composer runs the DAGs: it launches flex templates, creates job-specific Dataproc clusters (or
    # Serverless batches) and runs BigQuery jobs; the jobs themselves run as their own accounts.
    composer = ["roles/composer.worker", "roles/dataflow.developer", "roles/dataproc.editor", "roles/bigquery.jobUser"]
    build    = ["roles/logging.logWriter"]
  }
  project_bindings = merge([
    for workload, roles in local.project_roles : { for role in roles : "${workload} ${role}" => { workload = workload, role = role } }
  ]...)

  # Read and write objects (no bucket IAM, no bucket deletion).
  bucket_users = ["dataflow", "dataproc", "composer"]
  bucket_bindings = merge([
    for workload in local.bucket_users : {
      "lake ${workload}"    = { bucket = module.lake.name, workload = workload }
      "staging ${workload}" = { bucket = module.staging.name, workload = workload }
    }
  ]...)

  dataset_writers = ["dataflow", "dataproc", "composer"]
  dataset_bindings = merge([
    for workload in local.dataset_writers : { for key, dataset in google_bigquery_dataset.this : "${key} ${workload}" => { dataset = dataset.dataset_id, workload = workload } }
  ]...)
}

resource "google_project_iam_member" "workload" {
  for_each = local.project_bindings

  project = var.project
  role    = each.value.role
  member  = local.sa_members[each.value.workload]
}

resource "google_storage_bucket_iam_member" "workload" {
  for_each = local.bucket_bindings

  bucket = each.value.bucket
  role   = "roles/storage.objectUser"
  member = local.sa_members[each.value.workload]
}

# Cloud Build reads the uploaded sources from the staging bucket.
resource "google_storage_bucket_iam_member" "build_sources" {
  bucket = module.staging.name
  role   = "roles/storage.objectViewer"
  member = local.sa_members["build"]
}

resource "google_bigquery_dataset_iam_member" "workload" {
  for_each = local.dataset_bindings

  project    = var.project
  dataset_id = each.value.dataset
  role       = "roles/bigquery.dataEditor"
  member     = local.sa_members[each.value.workload]
}

# The streaming pipeline reads the rides subscription (viewer: Dataflow checks the subscription exists).
resource "google_pubsub_subscription_iam_member" "dataflow" {
  for_each = toset(["roles/pubsub.subscriber", "roles/pubsub.viewer"])

  project      = var.project
  subscription = google_pubsub_subscription.rides.name
  role         = each.value
  member       = local.sa_members["dataflow"]
}

# Composer launches jobs that run as the Dataflow and Dataproc accounts: it may act as those two only.
resource "google_service_account_iam_member" "composer_acts_as" {
  for_each = toset(["dataflow", "dataproc"])

  service_account_id = google_service_account.workload[each.value].name
  role               = "roles/iam.serviceAccountUser"
  member             = local.sa_members["composer"]
}

# Composer 2/3: the Composer service agent manages the environment through its service account.
resource "google_service_account_iam_member" "composer_agent" {
  service_account_id = google_service_account.workload["composer"].name
  role               = "roles/composer.ServiceAgentV2Ext"
  member             = "serviceAccount:service-${data.google_project.this.number}@cloudcomposer-accounts.iam.gserviceaccount.com"
}
