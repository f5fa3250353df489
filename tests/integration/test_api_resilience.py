"""The demo API when its dependencies fail, start together or are set up wrong: real processes only."""

import asyncio
import concurrent.futures
import json
import subprocess
import sys
import uuid

import asyncpg
import pytest
import requests
from demoapi.auth import PASSWORD_HASHER
from demoapi.migrations import MIGRATIONS, migrate

from tests.support.db import fetch, fetchval
from tests.support.demo_api import API_DIR, DemoApi
from tests.support.local_services import wait_until

SECRET = "test-secret-for-resilience-0123456789abcdef"


def new_database(postgres_server) -> str:
    return postgres_server.create_database(f"api_{uuid.uuid4().hex[:10]}")


def api_env(database: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "API_SECRET_KEY": SECRET,
        "SEED_ON_START": "true",
        "SEED_ITEMS": "20",
        "SEED_USERS": "0",
    }
    return env | extra


@pytest.mark.parametrize("stop_mode", ["fast", "immediate"])
def test_postgres_outage_gives_503_json_then_recovers_in_the_same_process(
    private_postgres_server, redis_server, stop_mode
):
    database = private_postgres_server.create_database("lab")
    # CACHE_TTL_SECONDS=0: every catalog read goes to Postgres.
    with DemoApi(api_env(database, redis_server.url, CACHE_TTL_SECONDS="0", DB_POOL_MIN_SIZE="2")) as api:
        pid = api.process.pid
        with api.client() as client:
            assert client.get("/api/v1/items/1").status_code == 200

            private_postgres_server.stop(stop_mode)
            for path in ("/api/v1/items/1", "/api/v1/items/2", "/api/v1/items?page=1"):
                response = client.get(path)
                assert response.status_code == 503, response.text
                assert response.json()["error"] == "database_unavailable"
                assert "Traceback" not in response.text
            login = client.post("/api/v1/auth/login", json={"email": "a@b.test", "password": "long-enough"})
            assert login.status_code == 503
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["postgres"].startswith("unavailable")
            assert ready.json()["checks"]["redis"] == "ok"
            assert client.get("/healthz").status_code == 200  # alive, just not ready

            private_postgres_server.start()
            wait_until(lambda: client.get("/api/v1/items/1").status_code == 200, 15, what="API recovery")
            # Concurrent requests take several pooled connections: each of them must work again.
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                urls = [f"{api.url}/api/v1/items/{i}" for i in range(1, 17)]
                statuses = list(pool.map(lambda url: requests.get(url, timeout=15).status_code, urls))
            assert statuses == [200] * 16
            assert client.get("/readyz").status_code == 200
            assert api.process.pid == pid and api.process.poll() is None
            assert api.metric(
                "http_requests_total", method="GET", handler="/api/v1/items/{item_id}", status="503"
            )
        records = [json.loads(line) for line in api.log_text().splitlines()]
        assert not [r for r in records if r["level"] == "error"]  # nothing went unhandled


def test_redis_outage_serves_the_catalog_from_postgres(postgres_server, private_redis_server):
    database = new_database(postgres_server)
    with DemoApi(api_env(database, private_redis_server.url, CACHE_TTL_SECONDS="300")) as api:
        with api.client() as client:
            assert client.get("/api/v1/items/1").status_code == 200  # a miss, now cached
            private_redis_server.stop()

            errors = api.metric("api_cache_errors_total", cache="item")
            item = client.get("/api/v1/items/2")
            assert item.status_code == 200
            assert item.json()["id"] == 2
            assert client.get("/api/v1/items", params={"per_page": 3}).status_code == 200
            assert api.metric("api_cache_errors_total", cache="item") == errors + 1
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"postgres": "ok", "redis": ready.json()["checks"]["redis"]}
            assert ready.json()["checks"]["redis"].startswith("unavailable")

            private_redis_server.start()
            wait_until(
                lambda: client.get("/readyz").status_code == 200, 10, what="readyz after Redis restart"
            )
            hits = api.metric("api_cache_hits_total", cache="item")
            client.get("/api/v1/items/3")
            client.get("/api/v1/items/3")
            assert api.metric("api_cache_hits_total", cache="item") == hits + 1


def test_extra_latency_delays_api_requests(postgres_server, redis_server):
    database = new_database(postgres_server)
    with DemoApi(api_env(database, redis_server.url, API_EXTRA_LATENCY_MS="300")) as api:
        assert api.client().get("/api/v1/items/1").status_code == 200
        series = {"method": "GET", "handler": "/api/v1/items/{item_id}", "status": "200"}
        assert api.metric("http_request_duration_seconds_count", **series) == 1
        # A lower bound only: the delay is a sleep, so the request cannot have been faster.
        assert api.metric("http_request_duration_seconds_bucket", le="0.25", **series) == 0


def test_concurrent_migrations_apply_each_version_once(postgres_server):
    database = new_database(postgres_server)

    async def run_concurrently() -> list[list[int]]:
        conns = [await asyncpg.connect(database) for _ in range(4)]
        try:
            return await asyncio.gather(*(migrate(conn) for conn in conns))
        finally:
            for conn in conns:
                await conn.close()

    results = asyncio.run(run_concurrently())
    versions = [version for version, _ in MIGRATIONS]
    assert sorted(v for applied in results for v in applied) == versions  # each applied exactly once
    assert asyncio.run(run_concurrently()) == [[], [], [], []]  # and re-running is a no-op
    tables = {
        row["tablename"]
        for row in fetch(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert {"users", "items", "orders", "order_lines", "schema_migrations"} <= tables


def test_two_replicas_starting_together_share_one_schema(postgres_server, redis_server):
    database = new_database(postgres_server)
    env = api_env(database, redis_server.url, SEED_USERS="2", SEED_USER_PASSWORD="replica-password")
    replicas = [DemoApi(env), DemoApi(env)]
    try:
        # Start both at once: their migrations and seeding race for the advisory lock.
        with concurrent.futures.ThreadPoolExecutor(len(replicas)) as pool:
            list(pool.map(DemoApi.start, replicas))
        assert fetchval(database, "SELECT count(*) FROM schema_migrations") == len(MIGRATIONS)
        assert fetchval(database, "SELECT count(*) FROM items") == 20
        assert fetchval(database, "SELECT count(*) FROM users") == 2
        for replica in replicas:
            assert replica.client().get("/readyz").status_code == 200
    finally:
        for replica in replicas:
            replica.close()


def run_seed(
    database: str, *args: str, password: str | None = "seed-pass-123"
) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(API_DIR), "DATABASE_URL": database}
    if password:
        env["SEED_USER_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "demoapi.seed", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_seeder_is_idempotent(postgres_server):
    database = new_database(postgres_server)
    first = run_seed(database, "--items", "250", "--users", "4")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"items_inserted": 250, "users_inserted": 4}
    second = run_seed(database, "--items", "250", "--users", "4")
    assert json.loads(second.stdout) == {"items_inserted": 0, "users_inserted": 0}
    grown = run_seed(database, "--items", "300", "--users", "4")
    assert json.loads(grown.stdout) == {"items_inserted": 50, "users_inserted": 0}

    assert fetchval(database, "SELECT count(*) FROM items") == 300
    assert fetchval(database, "SELECT count(DISTINCT category) FROM items") == 20
    assert fetchval(database, "SELECT min(stock) FROM items") == 1_000_000
    assert [r["id"] for r in fetch(database, "SELECT id FROM items ORDER BY id LIMIT 3")] == [1, 2, 3]
    assert fetchval(database, "SELECT nextval(pg_get_serial_sequence('items', 'id'))") == 301
    users = fetch(database, "SELECT email, password_hash FROM users ORDER BY id")
    assert [u["email"] for u in users] == [f"user{i}@loadlab.test" for i in range(1, 5)]
    assert PASSWORD_HASHER.verify(users[0]["password_hash"], "seed-pass-123")


def test_seeder_without_password_fails_with_one_line(postgres_server):
    result = run_seed(new_database(postgres_server), "--users", "3", password=None)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "SEED_USER_PASSWORD is not set" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "API_SECRET_KEY is not set"),
        ({"API_SECRET_KEY": "short"}, "API_SECRET_KEY has 5 characters"),
        ({"API_SECRET_KEY": SECRET, "DB_POOL_MAX_SIZE": "many"}, "DB_POOL_MAX_SIZE='many' is not an integer"),
        ({"API_SECRET_KEY": SECRET, "DB_POOL_MAX_SIZE": "0"}, "DB_POOL_MAX_SIZE=0 is below 1"),
        ({"API_SECRET_KEY": SECRET, "API_CPU_WORK_MS": "5ms"}, "API_CPU_WORK_MS='5ms' is not an integer"),
        ({"API_SECRET_KEY": SECRET, "API_CPU_WORK_MS": "5000"}, "API_CPU_WORK_MS=5000 is above 1000"),
        ({"API_SECRET_KEY": SECRET, "API_DB_QUERY_DELAY_MS": "-5"}, "API_DB_QUERY_DELAY_MS=-5 is below 0"),
    ],
)
def test_bad_configuration_refuses_to_start_with_one_line(env, message):
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "demoapi.main:app", "--port", "0"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(API_DIR), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
