# Ride events: the simulator (or the real feed) publishes to the topic; the streaming pipeline reads the
# subscription. Messages Pub/Sub cannot deliver after max_delivery_attempts go to the dead-letter topic,
# kept for a week on its own subscription. Records the pipeline rejects (malformed JSON, failed rules)
# are its own dead letters, in BigQuery (taxi.ride_dead_letter), with the reason.

resource "google_pubsub_topic" "rides" {
  project                    = var.project
  name                       = var.rides_topic
  message_retention_duration = "86400s"
  kms_key_name               = var.kms_key_name

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "rides_dead_letter" {
  project      = var.project
  name         = var.rides_dead_letter_topic
  kms_key_name = var.kms_key_name

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "rides" {
  project                    = var.project
  name                       = var.rides_subscription
  topic                      = google_pubsub_topic.rides.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  enable_message_ordering    = false

  expiration_policy {
    ttl = "" # never expires, even while no pipeline reads it
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.rides_dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }
}

resource "google_pubsub_subscription" "rides_dead_letter" {
  project                    = var.project
  name                       = "${var.rides_dead_letter_topic}-sub"
  topic                      = google_pubsub_topic.rides_dead_letter.id
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub's own service agent forwards undeliverable messages: it must publish to the dead-letter topic
# and acknowledge them on the source subscription.
locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project
  topic   = google_pubsub_topic.rides_dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_forwarder" {
  project      = var.project
  subscription = google_pubsub_subscription.rides.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}
