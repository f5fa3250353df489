"""Test tiers, LAB_REQUIRE_ALL, and shared fixtures: real PostgreSQL and Redis servers on loopback, from the
lab's own images (see tests/support/local_services.py).

Every test has one tier marker: `unit` (pure Python, runs anywhere), `integration` (real processes and the
lab's images on a Docker engine) or `e2e` (the compose stack); the folder a test lives in gives it, unless the
test carries one itself. `make test-unit`, `make test-integration` and `make test-e2e` select them.
With LAB_REQUIRE_ALL=1 (CI) a skipped test fails: CI runs everything or says what it lacks.

`postgres_server` and `redis_server` live for the whole session; give each test its own database
with `postgres_server.create_database(name)`. Tests that stop or restart a server use the
function-scoped `private_postgres_server` / `private_redis_server`, so no other test sees the outage.
"""

# Locust patches the standard library with gevent when it is imported; that must happen before anything
# imports ssl, or tests that import Locust after requests/urllib3 fail with a RecursionError.
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.support.local_services import PostgresServer, RedisServer  # noqa: E402

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "e2e")
# Bringing the compose stack up (first e2e test) and the longest lifecycle tests take minutes.
E2E_TIMEOUT = 1800


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if not any(item.get_closest_marker(tier) for tier in TIERS):
            folder = Path(item.path).resolve().relative_to(TESTS).parts[0]
            if folder not in TIERS:
                raise pytest.UsageError(f"{item.nodeid}: put the test under tests/unit, integration or e2e")
            item.add_marker(folder)
        if item.get_closest_marker("e2e") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and os.environ.get("LAB_REQUIRE_ALL") == "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, and LAB_REQUIRE_ALL=1 forbids skips: {reason}"


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
