# The flex-template images, and the autoscaling policy of long-lived Dataproc clusters.

resource "google_artifact_registry_repository" "images" {
  project       = var.project
  location      = var.region
  repository_id = var.artifact_repository
  format        = "DOCKER"
  description   = "gcpipe Dataflow flex-template images (launcher and workers)."
  kms_key_name  = var.kms_key_name

  # Keep the ten newest images of each template, delete older ones after 30 days.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_artifact_registry_repository_iam_member" "readers" {
  for_each = toset(["dataflow", "composer"])

  project    = var.project
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = local.sa_members[each.value]
}

resource "google_artifact_registry_repository_iam_member" "build_writer" {
  project    = var.project
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = local.sa_members["build"]
}

# The autoscaling policy of long-lived Dataproc clusters: one definition, infra/dataproc/autoscaling_policy.yaml
# (what `gcloud dataproc autoscaling-policies import` takes).
locals {
  autoscaling = yamldecode(file("${path.module}/../dataproc/autoscaling_policy.yaml"))
}

resource "google_dataproc_autoscaling_policy" "jobs" {
  project   = var.project
  location  = var.region
  policy_id = var.dataproc_autoscaling_policy

  worker_config {
    min_instances = local.autoscaling.workerConfig.minInstances
    max_instances = local.autoscaling.workerConfig.maxInstances
  }

  secondary_worker_config {
    min_instances = local.autoscaling.secondaryWorkerConfig.minInstances
    max_instances = local.autoscaling.secondaryWorkerConfig.maxInstances
  }

  basic_algorithm {
    cooldown_period = local.autoscaling.basicAlgorithm.cooldownPeriod
    yarn_config {
      graceful_decommission_timeout = local.autoscaling.basicAlgorithm.yarnConfig.gracefulDecommissionTimeout
      scale_up_factor               = local.autoscaling.basicAlgorithm.yarnConfig.scaleUpFactor
      scale_down_factor             = local.autoscaling.basicAlgorithm.yarnConfig.scaleDownFactor
    }
  }

  depends_on = [google_project_service.apis]
}
