# The flex-template images, and the autoscaling of the job-specific Dataproc clusters.

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

# Two primary workers always; secondary (preemptible) workers scale with YARN's pending memory.
resource "google_dataproc_autoscaling_policy" "jobs" {
  project   = var.project
  location  = var.region
  policy_id = var.dataproc_autoscaling_policy

  worker_config {
    min_instances = 2
    max_instances = 2
  }

  secondary_worker_config {
    min_instances = 0
    max_instances = 10
  }

  basic_algorithm {
    cooldown_period = "120s"
    yarn_config {
      graceful_decommission_timeout = "300s"
      scale_up_factor               = 0.5
      scale_down_factor             = 1.0
    }
  }

  depends_on = [google_project_service.apis]
}
