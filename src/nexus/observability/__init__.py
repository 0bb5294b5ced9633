"""Metrics and logs of a Nexus instance: `nexus.observability.metrics`, `nexus.observability.logs`."""
