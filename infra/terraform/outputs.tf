# What the Makefile and gcpipe.core.config read back (`terraform output -json`; `gcpipe deploy infra` writes
# the [gcp] section of gcpipe.toml from them).

output "project" {
  value = var.project
}

output "region" {
  value = var.region
}

output "environment" {
  value = var.environment
}

output "lake_bucket" {
  value = module.lake.name
}

output "staging_bucket" {
  value = module.staging.name
}

output "datasets" {
  description = "Dataset key -> dataset name (gcpipe.toml [gcp.datasets])."
  value       = { for key, dataset in google_bigquery_dataset.this : key => dataset.dataset_id }
}

output "tables" {
  description = "Table name -> project.dataset.table."
  value       = { for name, table in google_bigquery_table.this : name => "${var.project}.${table.dataset_id}.${table.table_id}" }
}

output "rides_topic" {
  value = google_pubsub_topic.rides.id
}

output "rides_subscription" {
  value = google_pubsub_subscription.rides.id
}

output "rides_dead_letter_topic" {
  value = google_pubsub_topic.rides_dead_letter.id
}

output "service_accounts" {
  description = "Workload -> service account email."
  value       = local.sa_emails
}

output "image_repository" {
  description = "Docker repository of the flex-template images."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
}

output "subnetwork" {
  value = google_compute_subnetwork.workers.self_link
}

output "dataproc_autoscaling_policy" {
  value = google_dataproc_autoscaling_policy.jobs.id
}

output "composer_environment" {
  value = google_composer_environment.this.name
}

output "composer_dag_prefix" {
  description = "gs:// folder the DAGs are imported into."
  value       = google_composer_environment.this.config[0].dag_gcs_prefix
}

output "composer_airflow_uri" {
  value = google_composer_environment.this.config[0].airflow_uri
}
