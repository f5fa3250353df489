"""A master and workers with only the lab's version handshake: the tests start no users."""

from lab import handshake
from locust import User, constant, events, task

handshake.register(events)


class Idle(User):
    wait_time = constant(1)

    @task
    def nothing(self):
        pass
