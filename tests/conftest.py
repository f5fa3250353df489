"""Shared fixtures: real PostgreSQL and Redis servers on loopback (see tests/support/local_services.py).

`postgres_server` and `redis_server` live for the whole session; give each test its own database
with `postgres_server.create_database(name)`. Tests that stop or restart a server use the
function-scoped `private_postgres_server` / `private_redis_server`, so no other test sees the outage.
"""

# Locust patches the standard library with gevent when it is imported; that must happen before anything
# imports ssl, or tests that import Locust after requests/urllib3 fail with a RecursionError.
from gevent import monkey

monkey.patch_all()

import pytest  # noqa: E402

from tests.support.local_services import PostgresServer, RedisServer  # noqa: E402


@pytest.fixture(scope="session")
def postgres_server():
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture
def private_postgres_server():
    with PostgresServer() as server:
        yield server


@pytest.fixture
def private_redis_server():
    with RedisServer() as server:
        yield server
