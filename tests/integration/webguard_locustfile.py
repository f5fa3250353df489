"""One slow user against the test's own loopback target: a running test with stats to protect."""

from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.2)

    @task
    def home(self):
        self.client.get("/")
