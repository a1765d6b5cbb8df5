# Cloud Composer 3 runs the DAGs as the composer service account. gcpipe's settings reach the DAGs and
# the support code through the GCPIPE_* variables that gcpipe.core.config reads; `gcpipe deploy dags` also
# uploads a gcpipe.toml beside them (datasets, images, templates). The PyPI packages are installed by
# `gcpipe deploy dags` from infra/composer/requirements.txt, so Terraform leaves them alone.

resource "google_composer_environment" "this" {
  project = var.project
  name    = var.composer_environment
  region  = var.region

  config {
    environment_size = var.composer_size

    software_config {
      image_version = var.composer_image_version
      env_variables = {
        GCPIPE_TARGET               = "gcp"
        GCPIPE_PROJECT              = var.project
        GCPIPE_REGION               = var.region
        GCPIPE_LAKE_BUCKET          = module.lake.name
        GCPIPE_STAGING_BUCKET       = module.staging.name
        GCPIPE_COMPOSER_ENVIRONMENT = var.composer_environment
      }
    }

    node_config {
      service_account = local.sa_emails["composer"]
    }

    dynamic "encryption_config" {
      for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
      content {
        kms_key_name = encryption_config.value
      }
    }
  }

  lifecycle {
    ignore_changes = [config[0].software_config[0].pypi_packages]
  }

  depends_on = [
    google_project_iam_member.workload,
    google_service_account_iam_member.composer_agent,
  ]
}
