"""gcpipe: the support package and CLI."""
