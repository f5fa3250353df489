"""The plugin added to a plain locustfile (`-f locustfile.py,lab_plugin.py`), as a new user tries it:
from a folder without the lab's files it runs with scenarios and SLOs off, exports, writes results and
makes no worker warn; a locustfile with its own shape runs it unless --scenario names a lab scenario.
Real Locust processes against a loopback target; every run is bounded by -t or its shape."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.local_services import free_port, wait_until
from tests.support.locust import PLUGIN, locust_command, locust_env, stop_process

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(__file__).with_name("scenarios_target.py")
TIMEOUT = 90

PLAIN = """
from locust import HttpUser, constant, task


class Reader(HttpUser):
    wait_time = constant(0.05)

    @task
    def page(self):
        self.client.get("/page")
"""
# The old README's advice (import the lab's shapes, above the user's classes) and a shape of its own:
# 2 users for 4 s.
OWN_SHAPE = (
    """
from locust import LoadTestShape

from lab.shapes import Baseline, Capacity  # noqa: F401
"""
    + PLAIN
    + """

class Steady(LoadTestShape):
    def tick(self):
        return (2, 2) if self.get_run_time() < 4 else None
"""
)


@pytest.fixture
def target():
    port = free_port()
    process = subprocess.Popen([sys.executable, str(TARGET), str(port)])
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=1).ok, 20, what="the target")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def locust(folder: Path, *args: str, stdout=subprocess.PIPE) -> subprocess.Popen:
    """Locust with the plugin, started in `folder` (which holds no lab file unless the test put one)."""
    return subprocess.Popen(
        locust_command(["locustfile.py", PLUGIN], "--loglevel", "INFO", *args),
        cwd=folder,
        env=locust_env(),
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_plain_locustfile_runs_with_the_plugin_from_an_empty_folder(tmp_path, target):
    (tmp_path / "locustfile.py").write_text(PLAIN)
    master_port, exporter_port = free_port(), free_port()
    master_log = tmp_path / "master.log"
    with master_log.open("w") as log:
        master = locust(
            tmp_path,
            "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port),
            "--headless", "--expect-workers", "2", "-u", "4", "-r", "4", "-t", "8s", "--host", target,
            "--exporter-port", str(exporter_port),
            stdout=log,
        )  # fmt: skip
        workers = [
            locust(tmp_path, "--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port))
            for _ in range(2)
        ]
        try:
            metrics = wait_until(
                lambda: (
                    (text := requests.get(f"http://127.0.0.1:{exporter_port}/metrics", timeout=2).text)
                    and 'name="/page"' in text
                    and text
                ),
                30,
                what="the master's /metrics to count requests",
            )
            outputs = [w.communicate(timeout=TIMEOUT)[0] for w in workers]
            assert master.wait(timeout=TIMEOUT) == 0, master_log.read_text()
        finally:
            for process in (*workers, master):
                stop_process(process)
    assert "locust_requests_total" in metrics
    log = master_log.read_text()
    assert "no scenarios.yaml given or found: the lab's scenarios are off" in log, log
    assert "no slo.yaml given or found: SLOs are off" in log, log
    assert "ERROR" not in log, log
    for output in outputs:
        assert "WARNING" not in output and "ERROR" not in output, output
    (run,) = (tmp_path / "results").iterdir()
    assert {"run.json", "locust_stats.csv", "locust_report.html"} <= {p.name for p in run.iterdir()}


def test_a_scenarios_file_named_but_missing_stays_an_error(tmp_path, target):
    (tmp_path / "locustfile.py").write_text(PLAIN)
    process = locust(tmp_path, "--headless", "-t", "2s", "--host", target, "--scenarios-file", "nowhere.yaml")
    output = process.communicate(timeout=TIMEOUT)[0]
    assert process.returncode == 1, output
    assert "nowhere.yaml: cannot read it" in output, output


@pytest.fixture
def own_shape(tmp_path):
    (tmp_path / "locustfile.py").write_text(OWN_SHAPE)
    shutil.copy(ROOT / "locust" / "scenarios.yaml", tmp_path)
    return tmp_path


def test_a_locustfile_with_its_own_shape_runs_it_next_to_the_lab_s_shapes(own_shape, target):
    process = locust(own_shape, "--headless", "--host", target, "--exporter-port", "0")
    output = process.communicate(timeout=TIMEOUT)[0]
    assert process.returncode == 0, output
    assert "Shape test updating to 2 users at 2.00 spawn rate" in output, output
    assert "scenario baseline" not in output and "WARNING" not in output, output


def test_scenario_runs_the_lab_s_shape_and_says_it_replaces_the_own_one(own_shape, target):
    process = locust(
        own_shape, "--headless", "--host", target, "--exporter-port", "0",
        "--scenario", "baseline", "--scenario-params", "users=3,ramp=1s,duration=2s",
    )  # fmt: skip
    output = process.communicate(timeout=TIMEOUT)[0]
    assert process.returncode == 0, output
    assert "--scenario baseline runs the lab's Baseline shape, not the locustfile's own Steady" in output, (
        output
    )
    assert "scenario baseline: {'users': 3" in output, output
