"""Shared by every side of the lab: SLO and scenario specs, plans, the capacity search, YAML loading,
the lab checkout's settings and the Prometheus client. Imports no Locust and nothing of the other sides."""
