"""Locust users for the report's local end-to-end test: the target is the test's own loopback server.

Loads the whole Load Lab plugin, as the lab's master does.
"""

import random

from locust import HttpUser, constant, events, task

import lab.plugin

lab.plugin.register(events)


class Visitor(HttpUser):
    """Two named endpoints with spread-out response times, and one that always fails."""

    wait_time = constant(0.05)

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
