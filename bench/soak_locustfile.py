"""The compressed soak's load: SOAK_NAMES request names at SOAK_USER_RPS requests/s a user.

The first two names answer 500 (the target's /fail/ paths), so failures grow per second too.
"""

import os
import random

from locust import FastHttpUser, constant_throughput, task

NAMES = int(os.environ.get("SOAK_NAMES", "20"))
FAILING = 2


class Soak(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("SOAK_USER_RPS", "10")))

    @task
    def get(self):
        i = random.randrange(NAMES)
        path = f"/fail/{i}" if i < FAILING else f"/ok/{i}"
        self.client.get(path, name=path)
