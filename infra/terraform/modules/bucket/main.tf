# A private bucket: uniform bucket-level access, public access prevention enforced, optional versioning,
# lifecycle rules and a customer-managed key. Used for the lake, the staging bucket and the state bucket's
# peers, so every bucket of the platform is secure the same way.

variable "project" {
  type = string
}

variable "name" {
  type = string
}

variable "location" {
  type = string
}

variable "versioning" {
  description = "Keep noncurrent versions (the lake: an overwritten or deleted file can be restored)."
  type        = bool
  default     = false
}

variable "noncurrent_version_days" {
  description = "Delete a noncurrent version this many days after it was replaced (with versioning)."
  type        = number
  default     = 30
}

variable "expire_prefixes" {
  description = "Object name prefixes whose objects are deleted after expire_days (temp and staging files)."
  type        = list(string)
  default     = []
}

variable "expire_days" {
  type    = number
  default = 7
}

variable "kms_key_name" {
  description = "Cloud KMS key for default encryption (CMEK); null keeps Google-managed keys."
  type        = string
  default     = null
}

variable "force_destroy" {
  type    = bool
  default = false
}

resource "google_storage_bucket" "this" {
  # checkov:skip=CKV_GCP_62: object access is recorded by Cloud Audit Logs (DATA_READ and DATA_WRITE on storage, enabled in the root module), which replace legacy usage-log buckets
  project                     = var.project
  name                        = var.name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy

  versioning {
    enabled = var.versioning
  }

  dynamic "lifecycle_rule" {
    for_each = var.versioning ? [1] : []
    content {
      action {
        type = "Delete"
      }
      condition {
        days_since_noncurrent_time = var.noncurrent_version_days
        with_state                 = "ARCHIVED"
      }
    }
  }

  dynamic "lifecycle_rule" {
    for_each = length(var.expire_prefixes) > 0 ? [1] : []
    content {
      action {
        type = "Delete"
      }
      condition {
        age            = var.expire_days
        matches_prefix = var.expire_prefixes
      }
    }
  }

  # Incomplete multipart uploads (an interrupted `gcloud storage cp`) cost storage and serve nobody.
  lifecycle_rule {
    action {
      type = "AbortIncompleteMultipartUpload"
    }
    condition {
      age = 1
    }
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }
}

output "name" {
  value = google_storage_bucket.this.name
}

output "url" {
  value = google_storage_bucket.this.url
}
