"""Locust users for the exporter's integration tests; the target is the test's own loopback server.

Registers Load Lab's run lifecycle and exporter directly (the full plugin also needs the scenario
and SLO files, which these tests do not exercise).
"""

import random

from locust import HttpUser, constant, events, task

from lab.plugin import exporter, runs

runs.register(events)
exporter.register(events)


class Shopper(HttpUser):
    """A few named endpoints with spread-out response times and some failures."""

    wait_time = constant(0.02)

    @task(6)
    def item(self):
        self.client.get(
            f"/items/{random.randint(1, 10_000)}?delay_ms={random.randint(0, 120)}", name="/items/[id]"
        )

    @task(3)
    def home(self):
        self.client.get("/")

    @task(1)
    def broken(self):
        self.client.get(f"/fail/{random.randint(1, 10_000)}", name="/fail/[id]")


class Crawler(HttpUser):
    """Every request a new URL, unnamed: the exporter must fold names past its bound."""

    wait_time = constant(0)

    @task
    def page(self):
        self.client.get(f"/pages/{random.randint(1, 1_000_000)}")
