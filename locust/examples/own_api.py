"""An example locustfile for your own API: copy it next to locustfile.py (e.g. locust/my_api.py),
adapt the tasks, and point the lab at your system:

    TARGET_HOST=https://staging.example.com LOCUSTFILE=my_api.py lab up

The lab's scenarios (lab run baseline|stress|spike|soak|capacity) work unchanged: the lab's plugin
offers their shapes itself (a LoadTestShape of your own runs unless --scenario names one of the
lab's); set objectives for your endpoints in locust/slo.yaml (objectives that match no
request report "no data" and do not fail a run).
"""

import random

from locust import FastHttpUser, between, tag, task


class Visitor(FastHttpUser):
    """Someone using the API: mostly reads, now and then a write."""

    wait_time = between(1, 3)  # think time between actions

    @tag("read")
    @task(5)
    def home(self) -> None:
        self.client.get("/")

    @tag("read")
    @task(3)
    def product(self) -> None:
        # One name for every id: stats, metrics and SLOs group by endpoint, not by URL.
        self.client.get(f"/products/{random.randint(1, 100)}", name="/products/[id]")

    @tag("write")
    @task(1)
    def add_to_cart(self) -> None:
        with self.client.post(
            "/cart", json={"product_id": random.randint(1, 100), "quantity": 1}, catch_response=True
        ) as response:
            if response.status_code not in (200, 201):
                response.failure(f"cart: HTTP {response.status_code}")
