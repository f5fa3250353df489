"""Locust users for the end-of-run tests (the target is the test's own loopback server): the report
tests' Visitor, which loads the whole Load Lab plugin, and a Reader whose requests never fail. The
test writes slo.yaml into the master's folder."""

from locust import HttpUser, constant, task

from tests.integration.report_locustfile import Visitor  # noqa: F401 - offered to Locust


class Reader(HttpUser):
    """Requests of 5 ms that never fail: only a latency objective can fail the run."""

    wait_time = constant(0.01)

    @task
    def page(self):
        self.client.get("/items/1?delay_ms=5", name="/items/[id]")
