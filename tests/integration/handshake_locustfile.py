"""A master and workers with only the lab's version handshake: the tests start no users."""

from locust import User, constant, events, task

from lab.plugin import handshake

handshake.register(events)


class Idle(User):
    wait_time = constant(1)

    @task
    def nothing(self):
        pass
