# A private network for the Dataflow and Dataproc workers: no public IPs, Google APIs reached through
# Private Google Access, flow logs on. Workers need nothing from the internet: the flex-template image
# carries every dependency.

resource "google_compute_network" "workers" {
  project                 = var.project
  name                    = var.network
  auto_create_subnetworks = false

  depends_on = [google_project_service.apis]
}

resource "google_compute_subnetwork" "workers" {
  project                  = var.project
  name                     = var.network
  region                   = var.region
  network                  = google_compute_network.workers.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Dataflow workers shuffle between themselves on 12345-12346; Dataproc nodes talk on any port. Only
# within the subnetwork, only between the platform's own workers.
resource "google_compute_firewall" "workers_internal" {
  project   = var.project
  name      = "${var.network}-workers-internal"
  network   = google_compute_network.workers.id
  direction = "INGRESS"
  priority  = 1000

  source_service_accounts = [local.sa_emails["dataflow"], local.sa_emails["dataproc"]]
  target_service_accounts = [local.sa_emails["dataflow"], local.sa_emails["dataproc"]]

  allow {
    protocol = "tcp"
  }

  allow {
    protocol = "udp"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
