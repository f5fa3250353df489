"""Locust users for the end-of-run tests (the target is the test's own loopback server). Loads the
whole Load Lab plugin, as the lab's master does; the test writes slo.yaml into the master's folder."""

import random

from locust import HttpUser, constant, task

import lab.plugin  # noqa: F401


class Shopper(HttpUser):
    """Two named endpoints with spread-out response times, and one that always fails."""

    wait_time = constant(0.02)

    @task(6)
    def item(self):
        self.client.get(
            f"/items/{random.randint(1, 1000)}?delay_ms={random.randint(0, 60)}", name="/items/[id]"
        )

    @task(3)
    def home(self):
        self.client.get("/")

    @task(1)
    def broken(self):
        self.client.get(f"/fail/{random.randint(1, 1000)}", name="/fail/[id]")


class Reader(HttpUser):
    """Requests of 5 ms that never fail: only a latency objective can fail the run."""

    wait_time = constant(0.01)

    @task
    def page(self):
        self.client.get("/items/1?delay_ms=5", name="/items/[id]")
