"""The compose stack on a real Docker engine, brought up once for the whole end-to-end session.

It runs as its own compose project on its own ports, .env and results folder, so that it never
touches a lab the user has running. Tests marked `lifecycle` restart or stop the stack: they run last.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.core.config import Lab

ROOT = Path(__file__).resolve().parents[2]
# LAB_E2E_SLOT=N runs a separate copy (its own project and ports), so that two sessions can run side by side.
SLOT = int(os.environ.get("LAB_E2E_SLOT", "0"))
PROJECT = f"loadlab-e2e{SLOT or ''}"
PORTS = {
    "GRAFANA_PORT": str(13000 + 10 * SLOT),
    "LOCUST_WEB_PORT": str(18089 + 10 * SLOT),
    "PROMETHEUS_PORT": str(19090 + 10 * SLOT),
}


def engine_reachable() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


def pytest_collection_modifyitems(config, items):
    if not any(item.get_closest_marker("e2e") for item in items):
        return
    if not engine_reachable():
        if os.environ.get("LAB_REQUIRE_DOCKER"):
            raise pytest.UsageError(
                "LAB_REQUIRE_DOCKER is set but no Docker engine is reachable: start dockerd"
            )
        skip = pytest.mark.skip(
            reason="no Docker engine reachable (set LAB_REQUIRE_DOCKER=1 to fail instead)"
        )
        for item in items:
            if item.get_closest_marker("e2e"):
                item.add_marker(skip)
    # The stack runs from the first end-to-end test to the end of the session: those tests go last, so
    # that the others do not share the machine with it; tests that restart or stop it go at the very end.
    items.sort(
        key=lambda item: (bool(item.get_closest_marker("e2e")), bool(item.get_closest_marker("lifecycle")))
    )


def http_json(url: str, data: dict | None = None, timeout: float = 10):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(url, data=body, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class Stack:
    workdir: Path
    env: dict = field(init=False)

    def __post_init__(self):
        self.results_dir = self.workdir / "results"
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            **PORTS,
            "LAB_HOME": str(ROOT),
            "LAB_PROJECT": PROJECT,
            "LAB_ENV_FILE": str(self.workdir / ".env"),
            "LAB_RESULTS_DIR": str(self.results_dir),
            "LOCUST_WORKERS": "2",
            "SEED_ITEMS": "2000",
            "SEED_USERS": "50",
        }
        self.settled_at: dict[str, float] = {}
        self.prometheus_url = f"http://127.0.0.1:{PORTS['PROMETHEUS_PORT']}"
        self.locust_url = f"http://127.0.0.1:{PORTS['LOCUST_WEB_PORT']}"

    def lab(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "lab", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"lab {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def compose(
        self, *args: str, env: dict | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        environ = {**self.env, **(env or {})}
        command = Lab.from_environment(environ).compose_command(*args)
        return subprocess.run(
            command, env=environ, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=True
        )

    def query(self, promql: str, at: float | None = None) -> list:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = f"{self.prometheus_url}/api/v1/query?{urllib.parse.urlencode(params)}"
        reply = http_json(url)
        assert reply["status"] == "success", reply
        return reply["data"]["result"]

    def wait_for(self, predicate, timeout: float, message: str, interval: float = 2.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f}s: {message}")

    def current_run_id(self) -> str | None:
        try:
            return http_json(f"{self.locust_url}/lab/run").get("run_id")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # no run has started yet
                return None
            raise

    def run_load(self, users: int = 10, seconds: int = 30, scenario: str | None = None) -> str:
        """A real bounded run through the master's HTTP API; returns its run id once Prometheus has scraped it."""
        form = {
            "user_count": users,
            "spawn_rate": users,
            "host": "http://api:8000",
            "run_time": f"{seconds}s",
        }
        if scenario:
            form["shape_class"] = scenario
        reply = http_json(f"{self.locust_url}/swarm", form)
        assert reply.get("success"), reply
        run_id = self.wait_for(self.current_run_id, 30, "the master did not report a run id")
        self.wait_for(
            lambda: http_json(f"{self.locust_url}/stats/requests")["state"] in ("stopped", "ready"),
            seconds + 60,
            "the run did not stop by itself",
        )
        self.settle(run_id)
        return run_id

    def settle(self, run_id: str) -> None:
        """Wait until the master has ended the run (its workers' final reports in, its verdicts judged)
        and Prometheus has scraped it after that, then one 15 s query step more, and note when.

        The step matters: a range query at a 15 s step (as the dashboards ask) must have a point after
        the run's end for its last figures, its verdicts and its stop to show. A later run replaces this
        one's series (they go stale), so tests query a past run at `self.settled_at[run_id]`.
        """
        query = urllib.parse.urlencode({"run_id": run_id})
        self.wait_for(
            lambda: http_json(f"{self.locust_url}/lab/run?{query}").get("ended_at"),
            60,
            f"the master did not end run {run_id}",
        )
        # A scrape after the master said "ended", not merely after `ended_at` (the stop, which comes
        # before the workers' last reports and the verdicts): only such a scrape has the verdicts.
        ended = time.time()
        self.wait_for(
            lambda: self.query(f'max(timestamp(locust_runner_state{{run_id="{run_id}"}})) > {ended:.3f}'),
            60,
            f"Prometheus did not scrape run {run_id} after its end",
        )
        time.sleep(15)
        self.settled_at[run_id] = time.time()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("lab-e2e"))
    try:
        stack.lab("up", timeout=900)
        yield stack
    finally:
        stack.lab("down", "--volumes", check=False)


# Five steps of 20 s (6 s ramp) from 5 to 25 users: about two minutes at most.
CAPACITY_ARGS = (
    "--users",
    "25",
    "--set",
    "start_users=5",
    "--set",
    "step_users=5",
    "--set",
    "step_duration=20s",
    "--set",
    "ramp=6s",
    "--set",
    "spawn_rate=20",
)


@pytest.fixture(scope="session")
def capacity_run(stack):
    """One short capacity search through `lab run`, shared by the tests that look at its results."""
    result = stack.lab("run", "capacity", *CAPACITY_ARGS, check=False, timeout=600)
    run_id = stack.current_run_id()
    stack.settle(run_id)
    return SimpleNamespace(result=result, run_id=run_id, at=stack.settled_at[run_id])


@pytest.fixture(scope="session")
def loaded_stack(stack):
    stack.run_id = stack.run_load(users=10, seconds=40)
    stack.at = stack.settled_at[stack.run_id]
    return stack
