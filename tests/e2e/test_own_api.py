"""The lab pointed at an API of your own, as README's "Your own API" says: the demo profile off,
TARGET_HOST and TARGET_METRICS naming a service on this machine through host.docker.internal, the
example locustfile. Prometheus scrapes the service as the job `target`, a run works, the report shows
the service's own figures (and no demo section), and the dashboard's "Your API" row has data.

The service is tests/e2e/own_api_target.py (prometheus_client, OpenTelemetry's histogram names), on
the Docker bridge's address: what `host-gateway` resolves to, reachable from the stack's containers and
not published beyond this machine. Its own stack (project and ports) runs beside the shared one.
Duration: about 2 minutes (the stack up, a 30 s run, the report).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab import dashboards
from lab.cli import targets
from lab.core.conventions import TARGET_JOB
from lab.core.prometheus import Prometheus
from tests.e2e.conftest import PORTS, PROJECT, Stack
from tests.support.locust import stop_process

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
OWN_PROJECT = f"{PROJECT}-own"
OWN_PORTS = {key: str(int(port) + 5) for key, port in PORTS.items()}
USERS, SECONDS = 10, 30


def bridge_gateway() -> str:
    result = subprocess.run(
        ["docker", "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return result.stdout.strip()


@pytest.fixture(scope="module")
def service():
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.own_api_target", bridge_gateway()],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        yield int(process.stdout.readline())
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory, service):
    stack = Stack(tmp_path_factory.mktemp("lab-e2e-own-api"))
    stack.env |= {
        **OWN_PORTS,
        "LAB_PROJECT": OWN_PROJECT,
        "COMPOSE_PROFILES": "",  # the demo profile off (offline: no Grafana either)
        "TARGET_HOST": f"http://host.docker.internal:{service}",
        "TARGET_METRICS": f"host.docker.internal:{service}/metrics",
        "LOCUSTFILE": "examples/own_api.py",
    }
    stack.prometheus_url = f"http://127.0.0.1:{OWN_PORTS['PROMETHEUS_PORT']}"
    stack.locust_url = f"http://127.0.0.1:{OWN_PORTS['LOCUST_WEB_PORT']}"
    try:
        up = stack.lab("up", timeout=900)
        assert f"http://host.docker.internal:{service}/metrics" in up.stdout
        yield stack
    finally:
        stack.lab("down", "--volumes", check=False)
        shutil.rmtree(ROOT / targets.TARGETS_DIR / OWN_PROJECT, ignore_errors=True)


@pytest.fixture(scope="module")
def own_run(own_stack):
    result = own_stack.lab(
        "run", "baseline", "--users", str(USERS), "--duration", f"{SECONDS}s", "--set", "ramp=5s",
        check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    run_id = own_stack.current_run_id()
    own_stack.settle(run_id)
    return run_id


def test_prometheus_scrapes_the_target_job_and_lab_status_shows_it(own_stack):
    up = own_stack.wait_for(
        lambda: own_stack.query(f'up{{job="{TARGET_JOB}"}} == 1'), 60, "the target job is not up"
    )
    assert len(up) == 1
    # No demo service runs: only the lab's own jobs and yours are up.
    assert {r["metric"]["job"] for r in own_stack.query("up == 1")} == {"locust", "prometheus", TARGET_JOB}
    status = own_stack.lab("status")
    (line,) = [line for line in status.stdout.splitlines() if line.startswith(f"{TARGET_JOB} ")]
    assert "/metrics" in line and line.endswith(" up")


def test_the_report_shows_your_apis_figures_and_no_demo_section(own_stack, own_run):
    own_stack.lab("report", own_run)
    folder = own_stack.results_dir / own_run
    figures = json.loads((folder / "report.json").read_text())
    assert figures["server_sections"] == ["target"]
    server = figures["server"]
    assert server["target_convention"] == "OpenTelemetry HTTP server"
    assert server["target_requests_per_second_mean"] > 1 and server["target_5xx_per_second_mean"] == 0
    assert 0 < server["target_p95_seconds_max"] < 1
    assert server["target_cpu_cores_mean"] > 0 and server["target_resident_memory_bytes_max"] > 10 * 2**20
    assert (
        server["api_requests_per_second_mean"] is None and server["postgres_commits_per_second_mean"] is None
    )
    # The service counted every request Locust sent in the run, and nothing else.
    (counted,) = own_stack.query(
        f'sum(http_server_request_duration_seconds_count{{job="{TARGET_JOB}"}})',
        at=own_stack.settled_at[own_run],
    )
    assert int(float(counted["value"][1])) == figures["summary"]["requests"] > 0
    html = (folder / "report.html").read_text()
    assert "Your API requests/s, mean" in html and "Your API CPU, mean" in html
    assert "Postgres commits/s" not in html and "<td>API requests/s, mean</td>" not in html


def test_the_dashboards_your_api_panels_have_data(own_stack, own_run):
    prometheus = Prometheus(own_stack.prometheus_url)
    at = own_stack.settled_at[own_run]
    (start,) = prometheus.query(f'locust_run_start_timestamp_seconds{{run_id="{own_run}"}}', time=at)
    start = float(start["value"][1])
    queries = [
        q
        for q in dashboards.panel_queries(own_run, "1m", "15s", int(at - start))
        if f'job="{TARGET_JOB}"' in q.expr
    ]
    assert {q.panel for q in queries} >= {
        "Your API: latency percentiles",
        "Your API: CPU and resident memory",
    }
    empty = [(q.panel, q.ref, q.expr) for q in queries if not prometheus.query_range(q.expr, start, at, 15)]
    assert not empty
