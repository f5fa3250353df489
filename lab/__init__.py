"""Load Lab: run, observe and report load tests on a Docker Compose stack."""

__version__ = "0.1.0"
