"""Faults a soak must survive, on the real stack under load: a worker crash, a Prometheus restart,
Postgres and Redis outages. Each test starts its own bounded run, breaks one thing, checks what the
lab shows while it is broken, and that everything serves again without restarting the rest.

They stop or restart services, so they are `lifecycle` tests (run after the shared-stack tests).
"""

import json
import os
import signal
import time

import docker
import pytest

from lab import dashboards
from tests.e2e.conftest import http_json

pytestmark = [pytest.mark.e2e, pytest.mark.lifecycle]

OUTAGE_SECONDS = 10
MISSING_ITEM = "/api/v1/items/999999999"  # never seeded: Postgres answers 404, never cached
# Runs inside the api container (the API is not published): prints the status, then the body.
API_PROBE = """
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen("http://127.0.0.1:8000" + sys.argv[1], timeout=20)
    print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
"""


def containers(stack, service: str) -> list:
    client = docker.from_env()
    return client.containers.list(
        all=True,
        filters={
            "label": [
                f"com.docker.compose.project={stack.env['LAB_PROJECT']}",
                f"com.docker.compose.service={service}",
            ]
        },
    )


def api_get(stack, path: str) -> tuple[int, dict]:
    (api,) = containers(stack, "api")
    code, output = api.exec_run(["python", "-c", API_PROBE, path])
    assert code == 0, output
    status, body = output.decode().split(" ", 1)
    return int(status), json.loads(body)


def master_stats(stack) -> dict:
    return http_json(f"{stack.locust_url}/stats/requests")


def aggregated(stats: dict) -> dict:
    return next(row for row in stats["stats"] if row["name"] == "Aggregated")


def start_load(stack, users: int, seconds: int) -> str:
    """Start a bounded run through the master's web API without waiting for it; returns its run id."""
    before = stack.current_run_id()
    form = {"user_count": users, "spawn_rate": users, "host": "http://api:8000", "run_time": f"{seconds}s"}
    reply = http_json(f"{stack.locust_url}/swarm", form)
    assert reply.get("success"), reply
    return stack.wait_for(
        lambda: (run_id := stack.current_run_id()) != before and run_id, 90, "no new run started"
    )


def stop_load(stack) -> None:
    # Locust's master waits up to 60 s (plus --stop-timeout) for the workers' users to stop. A worker that
    # rejoined while another was still "missing" can leave the master "running" with no users once Locust
    # drops the missing one: stop again, as a user would press Stop again.
    deadline = time.monotonic() + 120
    stopped_at = 0.0
    while (stats := master_stats(stack))["state"] not in ("stopped", "ready"):
        if time.monotonic() - stopped_at > 20:
            http_json(f"{stack.locust_url}/stop", {})
            stopped_at = time.monotonic()
        if time.monotonic() > deadline:
            (master,) = containers(stack, "locust-master")
            log = master.logs(tail=30).decode(errors="replace")
            workers = [(w["id"], w["state"], w["user_count"]) for w in stats["workers"]]
            raise AssertionError(
                f"the run did not stop: state {stats['state']}, users {stats['user_count']}, "
                f"workers {workers}\n{log}"
            )
        time.sleep(1)


class Counters:
    """Samples of the run's request counters, from the master and from Prometheus: none may go back."""

    def __init__(self, stack, run_id: str):
        self.stack, self.run_id = stack, run_id
        self.master: list[int] = []
        self.prometheus: list[float] = []

    def sample(self) -> None:
        self.master.append(aggregated(master_stats(self.stack))["num_requests"])
        result = self.stack.query(f'sum(locust_requests_total{{run_id="{self.run_id}"}})')
        if result:
            self.prometheus.append(float(result[0]["value"][1]))
        for series in (self.master, self.prometheus):
            assert series == sorted(series), f"a request counter went backwards: {series}"


def test_a_killed_worker_is_reported_missing_restarts_and_rejoins_while_the_run_goes_on(stack):
    run_id = start_load(stack, users=10, seconds=150)
    stack.wait_for(
        lambda: sum(w["state"] == "running" for w in master_stats(stack)["workers"]) == 2,
        30,
        "two workers did not start running",
    )
    victim = containers(stack, "locust-worker")[0]
    restarts = victim.attrs["RestartCount"]
    counters = Counters(stack, run_id)
    counters.sample()

    # A crash, as the OOM killer would do it. `docker kill` counts as a manual stop: no restart then.
    os.kill(victim.attrs["State"]["Pid"], signal.SIGKILL)

    def missing_in_prometheus():
        counters.sample()
        result = stack.query(f'locust_workers{{state="missing",run_id="{run_id}"}}')
        return result and float(result[0]["value"][1]) >= 1

    stack.wait_for(missing_in_prometheus, 45, "the exporter did not report a missing worker")
    assert http_json(f"{stack.locust_url}/lab/run")["invalidated"] is True
    # The dashboards' "Worker lost" annotation finds it, naming the worker.
    (lost,) = [
        a for a in dashboards.render(dashboards.overview)["annotations"]["list"] if a["name"] == "Worker lost"
    ]
    marks = stack.query(dashboards.substitute(lost["expr"], {"run_id": run_id}))
    assert [m["metric"]["host"] for m in marks] == [victim.attrs["Config"]["Hostname"]]

    def rejoined():
        counters.sample()
        victim.reload()
        stats = master_stats(stack)
        assert stats["state"] in ("running", "spawning"), "the run stopped when a worker died"
        return (
            victim.attrs["RestartCount"] > restarts
            and victim.attrs["State"]["Running"]
            and stats["worker_count"] == 2
        )

    stack.wait_for(rejoined, 90, "the killed worker did not restart and rejoin")
    counters.sample()
    assert counters.master[-1] > counters.master[0]

    # Locust drops a missing worker after its dead interval (60 s); the next tests start from two workers.
    stack.wait_for(
        lambda: all(w["state"] != "missing" for w in master_stats(stack)["workers"]),
        90,
        "the master kept the dead worker",
    )
    stop_load(stack)
    record = stack.wait_for(
        lambda: json.loads((stack.results_dir / run_id / "run.json").read_text()),
        30,
        "run.json missing",
    )
    assert record["invalidated"] is True
    assert record["workers_lost"] and record["workers_lost"][0]["worker"]


def test_prometheus_restarted_mid_run_keeps_the_data_from_before(stack):
    run_id = start_load(stack, users=5, seconds=90)
    query = f'sum(locust_requests_total{{run_id="{run_id}"}})'
    before = stack.wait_for(
        lambda: (r := stack.query(query)) and float(r[0]["value"][1]) > 0 and r,
        30,
        "the run did not reach Prometheus",
    )
    at, value = float(before[0]["value"][0]), float(before[0]["value"][1])

    stack.compose("restart", "prometheus", timeout=120)

    def answers():
        try:
            return stack.query(query, at=at)
        except OSError:
            return None  # not listening yet

    after = stack.wait_for(answers, 90, "Prometheus did not answer after its restart")
    assert float(after[0]["value"][1]) == value
    # And it scrapes the same run again.
    stack.wait_for(
        lambda: float(stack.query(query)[0]["value"][1]) > value,
        60,
        "Prometheus did not resume scraping the run",
    )
    stop_load(stack)


def api_started(stack) -> tuple[str, int]:
    (api,) = containers(stack, "api")
    return api.attrs["State"]["StartedAt"], api.attrs["RestartCount"]


def test_postgres_down_for_ten_seconds_gives_503_json_and_failures_then_the_api_recovers(stack):
    start_load(stack, users=10, seconds=120)
    stack.wait_for(lambda: aggregated(master_stats(stack))["num_requests"] > 0, 30, "no load")
    api_before = api_started(stack)
    failures_before = aggregated(master_stats(stack))["num_failures"]

    stack.compose("stop", "postgres", timeout=60)
    stopped = time.monotonic()
    try:
        status, body = stack.wait_for(
            lambda: (reply := api_get(stack, MISSING_ITEM))[0] == 503 and reply,
            OUTAGE_SECONDS,
            "the API did not answer 503 with Postgres down",
        )
        assert body["error"] and body["message"]
        stack.wait_for(
            lambda: aggregated(master_stats(stack))["num_failures"] > failures_before,
            OUTAGE_SECONDS,
            "Locust counted no failures with Postgres down",
        )
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
    finally:
        stack.compose("start", "postgres", timeout=60)

    status, body = stack.wait_for(
        lambda: (reply := api_get(stack, MISSING_ITEM))[0] == 404 and reply,
        60,
        "the API did not serve from Postgres again",
    )
    assert body["error"] == "item_not_found"
    assert api_get(stack, "/readyz")[0] == 200
    assert api_started(stack) == api_before, "the API was restarted"
    stop_load(stack)


def test_redis_down_the_catalog_falls_back_to_postgres_then_the_cache_returns(stack):
    start_load(stack, users=10, seconds=90)
    stack.wait_for(lambda: aggregated(master_stats(stack))["num_requests"] > 0, 30, "no load")
    api_before = api_started(stack)

    stack.compose("stop", "redis", timeout=60)
    stopped = time.monotonic()
    try:
        status, body = stack.wait_for(
            lambda: (reply := api_get(stack, "/readyz"))[0] == 503 and reply,
            OUTAGE_SECONDS,
            "the API did not notice Redis was down",
        )
        assert body["checks"]["postgres"] == "ok" and body["checks"]["redis"].startswith("unavailable")
        for path in ("/api/v1/items/7", "/api/v1/items?page=2&per_page=5"):
            status, body = api_get(stack, path)
            assert status == 200, (path, body)
        assert body["items"] and body["page"] == 2
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
    finally:
        stack.compose("start", "redis", timeout=60)

    stack.wait_for(lambda: api_get(stack, "/readyz")[0] == 200, 60, "the API did not see Redis again")
    assert api_started(stack) == api_before, "the API was restarted"
    stop_load(stack)
