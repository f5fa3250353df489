"""Scenarios on real Locust processes (a master with a worker, or a local runner) with the lab's
plugin loaded, against a loopback target of fixed capacity; and `lab run` against a real master's
web UI. Every run is bounded by its scenario's parameters and by a process timeout."""

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import locust as harness
from tests.support.local_services import free_port

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = harness.PLUGIN
SCENARIOS_FILE = ROOT / "locust" / "scenarios.yaml"
TARGET = Path(__file__).with_name("scenarios_target.py")
# Short steps so a whole capacity search fits in about a minute (at most 5 steps of 12 s); a worker
# reports every 3 s, so the ramp and the steady part must cover a few reports.
CAPACITY_PARAMS = "start_users=2,step_users=4,users=18,step_duration=12s,ramp=4s,spawn_rate=50"
PROCESS_TIMEOUT = 150

LOCUSTFILE = """
from locust import FastHttpUser, constant, task

from lab.plugin.shapes import Baseline, Capacity  # noqa: F401


class Client(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def thing(self):
        self.client.get("/thing/1", name="/thing/[id]")
"""
SLO = """
objectives:
  thing-p95:
    metric: latency_p95
    requests: "GET /thing/*"
    max: {p95}
  errors:
    metric: error_ratio
    max: 0.01
"""


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port} after {timeout} s")


@pytest.fixture
def target():
    port = free_port()
    process = subprocess.Popen([sys.executable, str(TARGET), str(port)])
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    (tmp_path / "slo.yaml").write_text(SLO.format(p95="500ms"))
    (tmp_path / "tight_slo.yaml").write_text(SLO.format(p95="1ms"))
    (tmp_path / "results").mkdir()
    return tmp_path


def locust_env(workdir: Path) -> dict:
    return harness.locust_env(workdir / "results")


# The lab's scenarios on every process; the exporter off (port 0).
LAB_ARGS = ("--scenarios-file", str(SCENARIOS_FILE), "--exporter-port", "0", "--loglevel", "INFO")


def run_locust(workdir: Path, *args: str, locustfile: str | Path = "locustfile.py", env: dict | None = None):
    """A local runner with the plugin, to its end: the CompletedProcess, output captured."""
    return subprocess.run(
        harness.locust_command([locustfile, PLUGIN], *LAB_ARGS, *args),
        cwd=workdir,
        env=env or locust_env(workdir),
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )


def only_run(workdir: Path) -> Path:
    runs = sorted(p for p in (workdir / "results").iterdir() if p.is_dir())
    assert len(runs) == 1, runs
    return runs[0]


def test_headless_capacity_search_with_a_worker_finds_and_writes_the_capacity(workdir, target):
    locust = LabLocust(
        workdir,
        [
            "--host", target, "--scenario", "capacity", "--scenario-params", CAPACITY_PARAMS,
            "--slo-file", "slo.yaml",
        ],
        workers=1,
        headless=True,
        stdout=subprocess.PIPE,
    )  # fmt: skip
    with locust:
        output, _ = locust.master.communicate(timeout=PROCESS_TIMEOUT)
    master = locust.master
    assert master.returncode == 0, output
    assert "capacity step" in output
    folder = only_run(workdir)
    assert folder.name.endswith("-capacity")
    capacity = json.loads((folder / "capacity.json").read_text())
    assert capacity["run_id"] == folder.name
    assert capacity["reason"] in ("knee", "breach", "max_users")
    steps = capacity["steps"]
    users = [s["users"] for s in steps]
    assert users == list(range(2, 2 + 4 * len(steps), 4))[: len(steps)]
    assert capacity["users"] in users and capacity["requests_per_second"] > 0
    best = users.index(capacity["users"])
    assert all(s["passed"] for s in steps[: best + 1])
    assert all(s["started_at"] < s["ended_at"] for s in steps)
    verdict = json.loads((folder / "slo.json").read_text())
    assert verdict["passed"] is True and verdict["failed"] == []  # judged at the capacity step
    assert {o["objective"] for o in verdict["objectives"]} == {"thing-p95", "errors"}
    run = json.loads((folder / "run.json").read_text())
    assert run["parameters"]["scenario"] == "capacity" and run["parameters"]["step_users"] == 4


def test_headless_run_with_an_impossible_slo_exits_non_zero_naming_the_objective(workdir, target):
    result = run_locust(
        workdir,
        "--headless",
        "--host",
        target,
        "--scenario",
        "baseline",
        "--scenario-params",
        "users=2,ramp=0s,duration=4s",
        "--slo-file",
        "tight_slo.yaml",
    )
    assert result.returncode == 1, result.stderr
    assert "SLO failed: thing-p95" in result.stderr
    verdict = json.loads((only_run(workdir) / "slo.json").read_text())
    assert verdict["failed"] == ["thing-p95"]
    assert [o["passed"] for o in verdict["objectives"]] == [False, True]


def test_a_bad_slo_file_stops_locust_at_start_naming_the_line(workdir, target):
    (workdir / "bad_slo.yaml").write_text("objectives:\n  a:\n    metric: latency_p95\n    maximum: 1s\n")
    result = run_locust(
        workdir, "--headless", "--host", target, "--scenario", "baseline", "--slo-file", "bad_slo.yaml"
    )
    assert result.returncode == 1
    assert "bad_slo.yaml:4: objective 'a': unknown key 'maximum'" in result.stderr


def test_the_own_api_example_runs_a_scenario_with_the_lab(workdir, target):
    example = ROOT / "locust" / "examples" / "own_api.py"
    result = run_locust(
        workdir,
        "--headless",
        "--host",
        target,
        "--scenario",
        "baseline",
        "--scenario-params",
        "users=4,ramp=0s,duration=4s",
        "--slo-file",
        "slo.yaml",
        locustfile=example,
    )
    assert result.returncode == 0, result.stderr
    verdict = json.loads((only_run(workdir) / "slo.json").read_text())
    outcomes = {o["objective"]: o["passed"] for o in verdict["objectives"]}
    assert outcomes == {"thing-p95": None, "errors": True}  # no /thing requests here: no data, no failure
    assert verdict["passed"] is True


@pytest.fixture
def demo_api(postgres_server, redis_server):
    from tests.support.demo_api import DemoApi

    redis_server.flushall()
    env = {
        "DATABASE_URL": postgres_server.create_database(f"scenarios_{os.getpid()}_{time.monotonic_ns()}"),
        "REDIS_URL": redis_server.url,
        "SEED_ON_START": "true",
        **DEMO_SEED,
    }
    with DemoApi(env) as api:
        yield api.url


DEMO_SEED = {"SEED_ITEMS": "200", "SEED_USERS": "5", "SEED_USER_PASSWORD": "scenario-test-password"}


BASELINE = ("baseline", "users=10,ramp=1s,duration=8s")


@pytest.mark.parametrize(
    ("selection", "scenario", "names"),
    [
        ((), BASELINE, {"GET /api/v1/items?page", "GET /api/v1/items/[id]", "POST /api/v1/auth/login"}),
        (("Shopper", "--tags", "orders"), BASELINE, {"POST /api/v1/auth/login", "POST /api/v1/orders"}),
        # The open model: ArrivalMix, the demo mix as a pool, runs the three classes' tasks.
        (
            (),
            ("rate", "rate=40,users=20,ramp=0s,duration=8s,max_delay=1s"),
            {
                "GET /api/v1/items?page",
                "GET /api/v1/items/[id]",
                "POST /api/v1/auth/login",
                "POST /api/v1/orders",
            },
        ),
    ],
)
def test_the_demo_user_classes_run_against_the_demo_api_without_failures(
    workdir, demo_api, selection, scenario, names
):
    (workdir / "errors_slo.yaml").write_text("objectives:\n  errors: {metric: error_ratio, max: 0}\n")
    result = run_locust(
        workdir,
        *selection,
        "--headless",
        "--host",
        demo_api,
        "--scenario",
        scenario[0],
        "--scenario-params",
        scenario[1],
        "--slo-file",
        "errors_slo.yaml",
        locustfile=ROOT / "locust" / "locustfile.py",
        env={**locust_env(workdir), **DEMO_SEED},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    with open(only_run(workdir) / "locust_stats.csv") as f:
        rows = {f"{r['Type']} {r['Name']}": r for r in csv.DictReader(f) if r["Name"] != "Aggregated"}
    assert names <= set(rows), sorted(rows)
    assert all(r["Failure Count"] == "0" for r in rows.values())
    assert not any(re.search(r"/\d+$", name) for name in rows)  # ids are grouped under one name
    # A closed scenario leaves the open model's pool out; a rate scenario runs only it.
    spawned = re.findall(r"All users spawned: (.*) \(\d+ total users\)", result.stderr)[-1]
    pool = re.search(r'"ArrivalMix": (\d+)', spawned)
    if scenario is BASELINE:
        assert pool is None or pool[1] == "0", spawned
    else:
        assert pool[1] == "20" and not re.search(r'"(CatalogBrowser|AccountUser|Shopper)": [1-9]', spawned), (
            spawned
        )


def test_a_capacity_step_longer_than_the_kept_stats_history_is_refused(workdir, target):
    result = run_locust(
        workdir,
        "--headless",
        "--host",
        target,
        "--scenario",
        "capacity",
        "--scenario-params",
        "step_duration=10m",
        "--lab-history-seconds",
        "300",
        "--slo-file",
        "slo.yaml",
    )
    assert result.returncode == 1
    assert "scenario capacity not started: capacity: step_duration must be under 290 s" in result.stderr


class LabLocust(harness.LocustProcesses):
    """Locust with the test's locustfile and the plugin, the lab's scenarios on every process."""

    def __init__(self, workdir: Path, args: list[str], **options):
        super().__init__(
            workdir,
            ["locustfile.py", PLUGIN],
            args=[*LAB_ARGS, *args],
            worker_args=LAB_ARGS,
            env=locust_env(workdir),
            **options,
        )


class WebMaster(LabLocust):
    """A Locust master with its web UI and class picker, and one worker, as `lab up` runs them."""

    def __init__(self, workdir: Path, slo_file: str):
        super().__init__(workdir, ["--class-picker", "--slo-file", slo_file], workers=1, web=True)
        self.url = self.web_url
        self.start()
        self.wait_ready(20)

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/stats/requests", timeout=5) as response:
            return json.loads(response.read())

    def lab(self, *args: str, **kwargs) -> subprocess.Popen:
        """`lab run` as from another machine: the master's results folder is not where it can see it."""
        env = {
            **os.environ,
            "LOCUST_URL": self.url,
            "LAB_RESULTS_DIR": str(self.workdir / "not-the-masters-results"),
            "LAB_SLO_FILE": str(self.workdir / "slo.yaml"),
        }
        return subprocess.Popen(
            [sys.executable, "-m", "lab", "run", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )


@pytest.fixture
def web_master(workdir):
    masters = []

    def start(slo_file: str) -> WebMaster:
        masters.append(WebMaster(workdir, slo_file))
        return masters[-1]

    yield start
    for master in masters:
        master.stop()


def test_lab_run_starts_a_capacity_search_follows_it_and_reports_the_capacity(workdir, target, web_master):
    master = web_master("slo.yaml")
    args = ["capacity", "--host", target, "--users", "18"]
    for item in CAPACITY_PARAMS.split(","):
        if not item.startswith("users="):
            args += ["--set", item]
    lab = master.lab(*args)
    out, err = lab.communicate(timeout=PROCESS_TIMEOUT)
    assert lab.returncode == 0, out + err
    assert "SLOs: all objectives passed" in out
    assert "stage steady" in out or "stage ramp" in out  # progress lines were shown
    folder = only_run(workdir)
    assert f"run {folder.name}: capacity on {target}" in out
    capacity = json.loads((folder / "capacity.json").read_text())
    assert capacity["users"] is not None
    # The master's sentence, as capacity.json has it: "at least" exactly when the search stopped at its maximum.
    assert capacity["sentence"] in out and " users at " in capacity["sentence"]
    assert ("at least" in out) == capacity["at_least"] == (capacity["reason"] == "max_users")
    # No Prometheus given to the master: nothing seen, and said why.
    assert capacity["limiter"] is None and capacity["resources"] == {}
    assert "--lab-prometheus-url" in capacity["not_seen"][0]["why"]


def test_lab_run_fails_on_an_impossible_slo_and_ctrl_c_stops_the_test(workdir, target, web_master):
    master = web_master("slo.yaml")
    short = ("baseline", "--host", target, "--users", "2", "--duration", "3s", "--set", "ramp=0s")
    lab = master.lab(*short, "--slo", "thing-p95=1ms")
    out, err = lab.communicate(timeout=PROCESS_TIMEOUT)
    assert lab.returncode == 1, out + err
    assert "lab: SLO failed: thing-p95" in err
    assert "thing-p95: latency_p95" in out and "<= 0.001 seconds: FAIL" in out

    lab = master.lab(*short)  # the override was for that run: the file's thresholds apply again
    out, err = lab.communicate(timeout=PROCESS_TIMEOUT)
    assert lab.returncode == 0, out + err

    lab = master.lab("baseline", "--host", target, "--users", "2", "--duration", "10m")
    deadline = time.monotonic() + 30
    while master.stats()["state"] != "running":
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.2)
    lab.send_signal(signal.SIGINT)
    out, err = lab.communicate(timeout=60)
    assert lab.returncode == 130, out + err
    deadline = time.monotonic() + 30
    while master.stats()["state"] not in ("stopped", "ready"):
        assert time.monotonic() < deadline, "Ctrl-C did not stop the test"
        time.sleep(0.2)
