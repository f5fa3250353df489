"""The demo stack's bottleneck knobs and saturation signals: the demo API on real Postgres and Redis, the
demo locustfile in a real Locust master and worker."""

import concurrent.futures
import subprocess
import uuid

import psutil
import pytest
import requests

from tests.support import locust as harness
from tests.support.db import fetchval
from tests.support.demo_api import DemoApi
from tests.support.local_services import wait_until

DEMO_LOCUSTFILE = harness.ROOT / "locust" / "locustfile.py"

WAIT = "api_db_pool_acquire_wait_seconds"


@pytest.fixture(scope="module")
def database(postgres_server):
    return postgres_server.create_database(f"api_{uuid.uuid4().hex[:10]}")


def api_env(database: str, redis_url: str, **extra: str) -> dict[str, str]:
    # CACHE_TTL_SECONDS=0: every catalog read goes to Postgres, so each request's acquires are known.
    env = {
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "CACHE_TTL_SECONDS": "0",
        "SEED_ON_START": "true",
        "SEED_ITEMS": "20",
        "SEED_USERS": "0",
    }
    return env | extra


def wait_histogram(api: DemoApi) -> dict[str, float]:
    """The pool wait histogram's count, sum and cumulative buckets (keyed by their `le`)."""
    samples = api.metrics()
    buckets = {
        dict(labels)["le"]: value for (name, labels), value in samples.items() if name == f"{WAIT}_bucket"
    }
    return {
        "count": samples[(f"{WAIT}_count", frozenset())],
        "sum": samples[(f"{WAIT}_sum", frozenset())],
        **buckets,
    }


def sleeping_queries(database: str) -> int:
    return fetchval(
        database,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%' AND datname = current_database()",
    )


def test_pool_metrics_give_its_maximum_and_time_every_acquire(database, redis_server):
    with DemoApi(api_env(database, redis_server.url, DB_POOL_MAX_SIZE="3")) as api:
        assert api.metric("api_db_pool_max_connections") == 3
        before = wait_histogram(api)
        assert set(before) - {"count", "sum"} == {
            "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
            "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf",
        }  # fmt: skip
        with api.client() as client:
            assert client.get("/api/v1/items/1").status_code == 200  # one query
            # A page: its rows, then its total.
            assert client.get("/api/v1/items", params={"page": 1}).status_code == 200
            assert client.get("/api/v1/items/999").status_code == 404  # one query, no row
            assert client.get("/readyz").status_code == 200  # the probe's query
        after = wait_histogram(api)
        assert after["count"] - before["count"] == 5
        assert after["+Inf"] == after["count"]
        assert after["sum"] > before["sum"]


def test_an_exhausted_pool_shows_in_use_at_its_maximum_and_requests_waiting(database, redis_server):
    delay_ms, requests_at_once = 300, 5
    env = api_env(database, redis_server.url, DB_POOL_MAX_SIZE="1", API_DB_QUERY_DELAY_MS=str(delay_ms))
    with DemoApi(env) as api:
        before = wait_histogram(api)
        urls = [f"{api.url}/api/v1/items/{i}" for i in range(1, requests_at_once + 1)]
        with concurrent.futures.ThreadPoolExecutor(requests_at_once) as pool:
            statuses = pool.map(lambda url: requests.get(url, timeout=30).status_code, urls)
            # Seen while the requests queue: the pool at its maximum, and the query delay a query that
            # keeps the held connection busy in Postgres (not idle in it).
            wait_until(
                lambda: api.metric("api_db_pool_connections_in_use") == 1 and sleeping_queries(database) == 1,
                10,
                what="the pool's one connection in use, running pg_sleep",
            )
            assert list(statuses) == [200] * requests_at_once
        assert api.metric("api_db_pool_max_connections") == 1
        after = wait_histogram(api)
        assert after["count"] - before["count"] == requests_at_once
        # One connection held 300 ms a request: all but the first request queued behind the others,
        # the k-th for k-1 holds (0.3 + 0.6 + ... s in all; half of it leaves room for arrival skew).
        waited_long = (after["count"] - after["0.1"]) - (before["count"] - before["0.1"])
        assert waited_long >= requests_at_once - 1
        queued = delay_ms / 1000 * sum(range(requests_at_once))
        assert after["sum"] - before["sum"] > queued / 2


def test_cpu_work_costs_the_api_process_that_cpu_time_per_request(database, redis_server):
    work_ms, count = 50, 10
    with DemoApi(api_env(database, redis_server.url, API_CPU_WORK_MS=str(work_ms))) as api:
        before = api.metric("process_cpu_seconds_total")
        with api.client() as client:
            for _ in range(count):
                assert client.get("/api/v1/items/1").status_code == 200
        used = api.metric("process_cpu_seconds_total") - before
    # A lower bound only: the work is measured in the thread's CPU time, so it cannot have cost less.
    assert used >= count * work_ms / 1000


def test_request_cpu_ms_costs_the_worker_that_cpu_time_per_request(tmp_path, database, redis_server):
    cpu_ms = 100
    knob = ["--request-cpu-ms", str(cpu_ms)]
    with (
        DemoApi(api_env(database, redis_server.url, CACHE_TTL_SECONDS="30")) as api,
        harness.LocustProcesses(
            tmp_path,
            [DEMO_LOCUSTFILE, harness.PLUGIN],
            workers=1,
            web=True,
            # The knob is given to the master only: it sends its value to the worker with the run.
            args=["--host", api.url, "--exporter-port", "0", *knob, "CatalogBrowser"],
            worker_args=["--exporter-port", "0"],
            env=harness.locust_env(tmp_path / "results", SEED_ITEMS="20"),
        ) as locust,
    ):
        locust.wait_ready()
        worker = psutil.Process(locust.workers[0].pid)
        before = sum(worker.cpu_times()[:2])
        swarm = requests.post(f"{locust.web_url}/swarm", data={"user_count": 10, "spawn_rate": 10}, timeout=5)
        assert swarm.json()["success"], swarm.text
        wait_until(lambda: requests_made(locust) >= 30, 60, 0.5, "30 requests")
        requests.post(f"{locust.web_url}/stop", timeout=5).raise_for_status()
        wait_until(lambda: stats(locust)["state"] == "stopped", 30, 0.2, "the run to stop")
        # The master's count first, then the worker's CPU time: the count cannot include a later request.
        made = requests_made(locust)
        used = sum(worker.cpu_times()[:2]) - before
    # A lower bound only: each request burnt that much of the worker's CPU time, on top of its own work.
    assert used >= made * cpu_ms / 1000


def stats(locust: harness.LocustProcesses) -> dict:
    return requests.get(f"{locust.web_url}/stats/requests", timeout=5).json()


def requests_made(locust: harness.LocustProcesses) -> int:
    return next(row["num_requests"] for row in stats(locust)["stats"] if row["name"] == "Aggregated")


def test_a_bad_request_cpu_ms_stops_locust_with_one_line_naming_it(tmp_path):
    result = subprocess.run(
        harness.locust_command([DEMO_LOCUSTFILE, harness.PLUGIN], "--headless", "--exporter-port", "0"),
        cwd=tmp_path,
        env=harness.locust_env(tmp_path, LOCUST_REQUEST_CPU_MS="fast", SEED_USER_PASSWORD="x"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "argument --request-cpu-ms: 'fast' is not a whole number of ms from 0 to 1000" in result.stderr
    assert "LOCUST_REQUEST_CPU_MS" in result.stderr
