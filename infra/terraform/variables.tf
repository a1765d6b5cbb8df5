# Settings gcpipe.core.config also knows (project, region, buckets, datasets, the Composer environment) are
# passed by `gcpipe deploy infra` from the config; the names of everything else live in
# names.auto.tfvars.json, which Terraform loads by itself and gcpipe.deploy.plans reads too.

variable "project" {
  description = "The GCP project id."
  type        = string
}

variable "region" {
  description = "Region of every regional resource (buckets, datasets, Dataflow, Dataproc, Composer)."
  type        = string
  default     = "us-central1"
}

variable "environment" {
  description = "dev, staging or prod: a label on every resource and the state prefix."
  type        = string
  default     = "prod"

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "The environment must be dev, staging or prod."
  }
}

variable "lake_bucket" {
  description = "The lake bucket (raw and curated files); default <project>-lake."
  type        = string
  default     = null
}

variable "staging_bucket" {
  description = "The staging bucket (Dataflow/Dataproc staging and temp files, templates); default <project>-staging."
  type        = string
  default     = null
}

variable "datasets" {
  description = "BigQuery dataset name per dataset key of sql/tables.json; a key not given keeps its own name."
  type        = map(string)
  default     = {}
}

variable "composer_environment" {
  description = "Name of the Cloud Composer environment."
  type        = string
  default     = "gcpipe"
}

variable "composer_image_version" {
  description = "Composer 3 image; the DAGs are written for Airflow 3."
  type        = string
  default     = "composer-3-airflow-3"
}

variable "composer_size" {
  description = "ENVIRONMENT_SIZE_SMALL, _MEDIUM or _LARGE."
  type        = string
  default     = "ENVIRONMENT_SIZE_SMALL"
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) for CMEK on buckets, datasets, topics, the image repository and Composer; null keeps Google-managed keys."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to destroy tables and the Composer environment's data by accident."
  type        = bool
  default     = true
}

variable "staging_retention_days" {
  description = "Days after which temp/, staging/, dataproc/ and cloudbuild/ files in the staging bucket are deleted (code/ and templates/ stay)."
  type        = number
  default     = 7
}

variable "lake_noncurrent_version_days" {
  description = "Days a replaced or deleted lake object stays restorable."
  type        = number
  default     = 30
}

variable "max_delivery_attempts" {
  description = "Deliveries of a ride message before Pub/Sub moves it to the dead-letter topic."
  type        = number
  default     = 5
}

variable "subnet_cidr" {
  description = "Range of the workers' subnetwork (Dataflow and Dataproc, private IPs only)."
  type        = string
  default     = "10.10.0.0/20"
}

# -- names (names.auto.tfvars.json) ---------------------------------------------------------------

variable "service_accounts" {
  description = "Account id per workload: dataflow, dataproc, composer, build."
  type        = map(string)
}

variable "artifact_repository" {
  description = "Artifact Registry Docker repository of the flex-template images."
  type        = string
}

variable "network" {
  description = "VPC network and subnetwork of the workers."
  type        = string
}

variable "rides_topic" {
  description = "Pub/Sub topic of the ride events."
  type        = string
}

variable "rides_subscription" {
  description = "Subscription the streaming pipeline reads."
  type        = string
}

variable "rides_dead_letter_topic" {
  description = "Topic of ride messages Pub/Sub could not deliver."
  type        = string
}

variable "dataproc_autoscaling_policy" {
  description = "Id of the autoscaling policy of long-lived Dataproc clusters (infra/dataproc/autoscaling_policy.yaml)."
  type        = string
}
