terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }

  # The state lives in a versioned bucket that `gcpipe deploy infra` creates before the first init
  # (-backend-config=bucket=<project>-tfstate -backend-config=prefix=gcpipe/<environment>).
  backend "gcs" {}
}

provider "google" {
  project = var.project
  region  = var.region

  default_labels = local.labels
}
