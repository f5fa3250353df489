"""The open model (lab.plugin.arrivals) on real Locust processes with the lab's plugin loaded, against
the loopback target of tests/integration/scenarios_target.py (a fixed service time): a master with a
worker at a rate the pool keeps up with, and a local runner whose pool cannot keep up once the target
is slow. Figures come from the exporter, scraped once the test has stopped (--autostart/--autoquit keep
the process up for it); with the worker, a real Prometheus scrapes the run and the overview dashboard's
open-model panels must return data. Every run is bounded by its scenario's parameters and a timeout."""

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest

from lab import dashboards

# The Prometheus fixture of the dashboard query test: here it checks the open-model panels.
from tests.integration.test_dashboard_queries import RATE_INTERVAL, metrics_of, prometheus_with_rules  # noqa: F401
from tests.support.local_services import free_port, port_is_open, wait_until
from tests.support.locust import PLUGIN, LocustProcesses, stop_process

SCENARIOS_FILE = Path(__file__).resolve().parents[2] / "locust" / "scenarios.yaml"
TARGET = Path(__file__).with_name("scenarios_target.py")
PROCESS_TIMEOUT = 120
RATE = 50
SECONDS = 20
# The held rate is judged over 60 s, as issue #18 states it: a start or stop a few hundred ms off is
# then within the 2% it allows, as over 20 s it was not once in three clean-clone CI runs.
HOLD_SECONDS = 60

LOCUSTFILE = """
from locust import FastHttpUser, task

from lab.shapes import ArrivalUser, Rate  # noqa: F401


class Client(ArrivalUser, FastHttpUser):
    @task
    def thing(self):
        self.client.get("/thing/1", name="/thing/[id]")
"""


def start_target(service_ms: int, slots: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(TARGET), str(port), "--service-ms", str(service_ms), "--slots", str(slots)]
    )
    wait_until(lambda: port_is_open(port), 20, 0.1, "the target")
    return process, f"http://127.0.0.1:{port}"


def rate_run(workdir: Path, host: str, params: str, workers: int) -> LocustProcesses:
    """A master with `workers` workers (or a local runner) that starts the rate scenario at once and
    stays up 20 s after it ends, so that the exporter can be read."""
    args = ["--host", host, "--scenarios-file", str(SCENARIOS_FILE), "--scenario", "rate"]
    args += ["--scenario-params", params, "--autostart", "--autoquit", "20"]
    if workers:
        args += ["--expect-workers", str(workers)]
    return LocustProcesses(
        workdir,
        ["locustfile.py", PLUGIN],
        workers=workers,
        web=True,
        exporter=True,
        args=args,
        worker_args=["--exporter-port", "0"],
    )


SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


def scrape(port: int) -> dict:
    """{family sample name: {label text: value}} of one /metrics scrape."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples: dict = defaultdict(dict)
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            samples[match[1]][match[2] or ""] = float(match[3])
    return samples


def figures_when_stopped(port: int, timeout: float) -> dict:
    """The exporter's figures once the runner has stopped (and the workers' last reports are in)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            samples = scrape(port)
        except OSError:
            samples = {}
        states = samples.get("locust_runner_state", {})
        if any('state="stopped"' in labels and value == 1 for labels, value in states.items()):
            time.sleep(4)  # a worker's last report follows its stop
            return summarise(scrape(port))
        time.sleep(0.5)
    raise AssertionError("the test did not stop in time")


def one(samples: dict, name: str, *labels: str) -> float:
    values = [v for k, v in samples.get(name, {}).items() if all(label in k for label in labels)]
    assert len(values) == 1, (name, labels, samples.get(name))
    return values[0]


def summarise(s: dict) -> dict:
    row = 'name="/thing/[id]"'
    (run_id,) = {re.search(r'run_id="([^"]*)"', k)[1] for k in s["locust_requests_total"]}
    return {
        "run_id": run_id,
        "requests": one(s, "locust_requests_total", row),
        "arrivals": one(s, "locust_arrivals_total"),
        "dropped": one(s, "locust_arrivals_dropped_total"),
        "response_sum": one(s, "locust_request_duration_seconds_sum", row),
        "intended_sum": one(s, "locust_request_intended_duration_seconds_sum", row),
        "intended_count": one(s, "locust_request_intended_duration_seconds_count", row),
        "lateness_sum": one(s, "locust_arrival_lateness_seconds_sum"),
        "lateness_count": one(s, "locust_arrival_lateness_seconds_count"),
        "response_le_1": one(s, "locust_request_duration_seconds_bucket", 'le="1.0"', row),
        "intended_le_1": one(s, "locust_request_intended_duration_seconds_bucket", 'le="1.0"', row),
    }


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    (tmp_path / "slo.yaml").write_text("objectives:\n  errors:\n    metric: error_ratio\n    max: 0.01\n")
    return tmp_path


def test_a_master_and_worker_hold_the_rate_with_nothing_dropped(workdir, prometheus_with_rules):  # noqa: F811 - the fixture
    target, host = start_target(service_ms=10, slots=50)
    # max_delay 5 s: a pool that keeps up drops nothing even when the machine stalls for a few seconds
    # (a clean-clone CI run once dropped 173 arrivals, about 3.5 s of them, with max_delay=1s).
    params = f"rate={RATE},users=20,ramp=0,duration={HOLD_SECONDS}s,max_delay=5s"
    locust = rate_run(workdir, host, params, workers=1).start()
    exporter = locust.exporter_port
    try:
        wait_until(lambda: port_is_open(exporter), 20, 0.1, "the exporter")
        prometheus = prometheus_with_rules(exporter)
        start = time.time()
        f = figures_when_stopped(exporter, HOLD_SECONDS + 60)
        end = time.time()
        # The overview's open-model panels, queried as Grafana would over this run: each has data.
        run_id = f["run_id"]
        checked, empty = 0, {}
        for query in dashboards.panel_queries(run_id, RATE_INTERVAL, "1s", int(end - start) + 10):
            if not any(
                m.startswith(("locust_arrival", "locust_request_intended")) for m in metrics_of(query.expr)
            ):
                continue
            checked += 1
            if query.instant:
                result = prometheus.query(query.expr, time=end)
            else:
                result = prometheus.query_range(query.expr, start, end, 1)
            if not result:
                empty[(query.dashboard, query.panel, query.ref)] = query.expr
        assert checked >= 4 and not empty, (checked, empty)
    finally:
        locust.stop()
        stop_process(target)
    assert f["dropped"] == 0
    assert abs(f["arrivals"] / HOLD_SECONDS - RATE) <= 0.02 * RATE, f
    assert abs(f["requests"] / HOLD_SECONDS - RATE) <= 0.02 * RATE, f  # achieved: every arrival served
    # Every request served an arrival: the second clock counts each one, and adds the arrival's wait
    # (an arrival still in progress when the test stopped has a wait and no request).
    assert f["intended_count"] == f["requests"] <= f["lateness_count"] <= f["requests"] + 20
    gap = f["intended_sum"] - f["response_sum"]  # the waits of the arrivals whose requests completed
    assert 0 <= gap <= f["lateness_sum"] + 1e-6


def test_a_pool_that_cannot_keep_up_drops_arrivals_and_the_second_clock_shows_the_wait(workdir):
    # 200 ms a request and 5 users: the pool serves at most 25 of the 50 arrivals a second.
    service_ms, users = 200, 5
    target, host = start_target(service_ms=service_ms, slots=50)
    # A p95 of 500 ms: Locust's clock (about 200 ms) meets it, the intended-start clock (with the wait
    # for a free user, up to max_delay) does not; a rate run is judged on the second.
    (workdir / "slo.yaml").write_text("objectives:\n  p95: {metric: latency_p95, max: 500ms}\n")
    params = f"rate={RATE},users={users},ramp=0,duration={SECONDS}s,max_delay=1s"
    runner = rate_run(workdir, host, params, workers=0).start()
    exporter = runner.exporter_port
    try:
        wait_until(lambda: port_is_open(exporter), 20, 0.1, "the exporter")
        f = figures_when_stopped(exporter, SECONDS + 60)
        verdict_file = workdir / "results" / f["run_id"] / "slo.json"
        wait_until(verdict_file.exists, 20, 0.2, "the run's verdict")
    finally:
        runner.stop()
        stop_process(target)
    (p95,) = json.loads(verdict_file.read_text())["objectives"]
    assert p95["passed"] is False and p95["value"] >= service_ms / 1000 + 0.2, p95
    # The offered rate does not sag with the target: arrivals stay due at 50/s.
    assert abs(f["arrivals"] / SECONDS - RATE) <= 0.02 * RATE, f
    served = f["requests"]
    mean_response = f["response_sum"] / served
    assert mean_response >= service_ms / 1000
    assert served <= users / (service_ms / 1000) * SECONDS * 1.02  # the pool's ceiling
    # Every due arrival was served or dropped, but for those in progress or still waiting (for less
    # than max_delay) when the test ended.
    assert f["arrivals"] - users - RATE * 1.0 <= served + f["dropped"] <= f["arrivals"]
    assert f["dropped"] >= f["arrivals"] - users / (service_ms / 1000) * SECONDS * 1.02 - RATE * 1.0
    # The second clock is the first plus the wait for a free user, which here is most of a service time.
    # (the arrivals in progress at the end, at most one a user, have a wait of at most max_delay and no request).
    gap = f["intended_sum"] - f["response_sum"]
    assert f["lateness_sum"] - users * 1.0 - 1e-6 <= gap <= f["lateness_sum"] + 1e-6
    assert f["intended_count"] == served
    assert gap / served >= 0.5 * service_ms / 1000
    assert f["intended_le_1"] < f["response_le_1"]


def test_a_rate_capacity_search_ends_where_the_pool_drops_arrivals_with_a_capacity_in_requests_per_second(
    workdir,
):
    # 100 ms a request and a pool of 4: at most 40 arrivals/s are served. Steps of 15, 30, 45 ... /s:
    # 30/s is carried, 45/s drops about one arrival in nine, far beyond the 2% tolerance.
    service_ms, users = 100, 4
    target, host = start_target(service_ms=service_ms, slots=50)
    (workdir / "slo.yaml").write_text(
        "objectives:\n  errors: {metric: error_ratio, max: 0.01}\n  p95: {metric: latency_p95, max: 2s}\n"
    )
    params = f"start_rate=15,step_rate=15,rate=90,users={users},step_duration=15s,ramp=5s,max_delay=1s,tolerance=0.02"
    args = ["--host", host, "--scenarios-file", str(SCENARIOS_FILE), "--scenario", "rate-capacity"]
    args += ["--scenario-params", params, "--slo-file", "slo.yaml"]
    locust = LocustProcesses(
        workdir,
        ["locustfile.py", PLUGIN],
        workers=1,
        headless=True,
        args=args,
        worker_args=["--exporter-port", "0"],
    ).start()
    try:
        code = locust.wait(timeout=PROCESS_TIMEOUT)
    finally:
        locust.stop()
        stop_process(target)
    (folder,) = (workdir / "results").iterdir()
    capacity = json.loads((folder / "capacity.json").read_text())
    steps = capacity["steps"]
    assert code == 0, locust.logs()
    assert folder.name.endswith("-rate-capacity")
    assert capacity["reason"] == "dropped", capacity
    assert [s["offered_rate"] for s in steps] == [15.0, 30.0, 45.0]
    assert [s["passed"] for s in steps] == [True, True, False] and steps[-1]["short"] == "dropped"
    ceiling = users / (service_ms / 1000)
    last = steps[-1]
    assert last["dropped"] > 0.02 * last["arrivals"] and last["achieved_rate"] <= ceiling * 1.02
    # The capacity: the last step that carried its offered rate, and the requests/s it achieved (one a task).
    assert capacity["rate"] == 30.0
    assert capacity["requests_per_second"] == pytest.approx(30.0, rel=0.03)
    assert steps[1]["achieved_rate"] == pytest.approx(30.0, rel=0.03) and steps[1]["dropped"] == 0
    # The SLOs were judged on the intended-start clock: at the step that dropped, its p95 holds the wait
    # for a free user on top of the service time.
    p95 = {v["objective"]: v["value"] for v in last["verdicts"]}["p95"]
    assert p95 >= service_ms / 1000 + 0.2
