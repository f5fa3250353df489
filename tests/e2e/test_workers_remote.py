"""Workers from "another machine": a second compose project, on its own network, that reaches the master
only through the worker port `lab up` publishes with LAB_EXPOSE_MASTER=1.

The master's port is bound to the host's address on Docker's default bridge (docker0): a host address
that containers of any compose network reach through their gateway, as a second machine would reach
the master's private address. The test restores the stack (no published worker port) when it is done.
"""

import ipaddress
import os
import re
import subprocess
import sys

import docker
import locust
import pytest

from lab.core.config import Lab
from tests.e2e.conftest import PROJECT, ROOT, SLOT, http_json

pytestmark = [pytest.mark.e2e, pytest.mark.lifecycle]

REMOTE = "remote-e2e"
OTHER_LOCUST = "2.46.7"
LIVE = 'state=~"ready|spawning|running"'
# Only series scraped in the last 15 s: a Prometheus restarted with the stack (lab down, lab up) wrote no
# staleness markers, so the previous master's series would otherwise count for another five minutes.
LIVE_WORKERS = f"locust_workers{{{LIVE}}} and (time() - timestamp(locust_workers{{{LIVE}}}) < 15)"
OFFLINE_PIP = re.compile(r"No matching distribution|NewConnectionError|Temporary failure in name resolution")


def bridge_gateway() -> str:
    """The host's address on docker0: the IPAM gateway, else (as Docker picks it) the subnet's first host."""
    config = docker.from_env().networks.get("bridge").attrs["IPAM"]["Config"][0]
    return config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


class Exposed:
    """The e2e stack with its master's worker port published, and `lab` run with those settings."""

    def __init__(self, stack):
        self.stack = stack
        self.bind = bridge_gateway()
        self.port = 15557 + 10 * SLOT
        self.master = f"{self.bind}:{self.port}"
        self.workers_project = f"{PROJECT}-workers"
        self.env = {
            **stack.env,
            "LAB_EXPOSE_MASTER": "1",
            "LAB_MASTER_BIND": self.bind,
            "LOCUST_MASTER_PORT": str(self.port),
            "LAB_WORKERS_PROJECT": self.workers_project,
        }

    def lab(self, *args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "lab", *args],
            env={**self.env, **(env or {})},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def workers(self) -> list[dict]:
        return http_json(f"{self.stack.locust_url}/stats/requests")["workers"]

    def remote_containers(self) -> list:
        return docker.from_env().containers.list(
            all=True, filters={"label": f"com.docker.compose.project={self.workers_project}"}
        )

    def count(self, promql: str) -> float:
        result = self.stack.query(promql)
        return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture(scope="module")
def exposed(stack):
    exposed = Exposed(stack)
    up = exposed.lab("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"publishes the Locust master's worker port on {exposed.master}" in up.stderr
    assert "no authentication" in up.stderr
    try:
        # The master was recreated with the port published: its own two workers join it again first.
        stack.wait_for(
            lambda: exposed.count(f"sum({LIVE_WORKERS})") == 2,
            120,
            "the two local workers rejoined",
        )
        yield exposed
    finally:
        exposed.lab("workers", "down")
        stack.lab("up")  # without LAB_EXPOSE_MASTER: the port is closed again, the local workers back
        stack.wait_for(lambda: exposed.count(f"sum({LIVE_WORKERS})") == 2, 120, "the two local workers back")


def test_published_only_on_the_given_address(exposed):
    client = docker.from_env()
    (master,) = client.containers.list(
        filters={
            "label": [f"com.docker.compose.project={PROJECT}", "com.docker.compose.service=locust-master"]
        }
    )
    bindings = master.attrs["HostConfig"]["PortBindings"]["5557/tcp"]
    assert bindings == [{"HostIp": exposed.bind, "HostPort": str(exposed.port)}]


def test_remote_workers_join_send_load_and_are_seen_leaving(exposed):
    stack = exposed.stack
    up = exposed.lab("workers", "up", "--master", exposed.master, "--count", "2", "--name", REMOTE)
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"2 worker(s) joined the master at {exposed.master}" in up.stdout

    # Their own network only: the master is reachable solely through the published address.
    network = f"{exposed.workers_project}_default"
    remote = exposed.remote_containers()
    assert len(remote) == 2
    for container in remote:
        assert set(container.attrs["NetworkSettings"]["Networks"]) == {network}
        assert f"LOCUST_MASTER_NODE_HOST={exposed.bind}" in container.attrs["Config"]["Env"]

    # The master counts 2 local + 2 remote workers, and the dashboards' per-host count sees the machine.
    stack.wait_for(lambda: exposed.count(f"sum({LIVE_WORKERS})") == 4, 120, "the master counting 4 workers")
    per_host = f'count(locust_worker_state{{host="{REMOTE}", {LIVE}}})'
    stack.wait_for(lambda: exposed.count(per_host) == 2, 60, "two workers on the remote host")

    # The target must be reachable from every machine: attach the demo API to the workers' network
    # (the master stays unreachable from there). Then only the remote workers are left to send load.
    api = docker.from_env().containers.list(
        filters={"label": [f"com.docker.compose.project={PROJECT}", "com.docker.compose.service=api"]}
    )[0]
    docker.from_env().networks.get(network).connect(api, aliases=["api"])
    try:
        stack.compose("stop", "locust-worker", env=exposed.env)
        stack.wait_for(
            lambda: sorted(w["id"].rsplit("_", 1)[0] for w in exposed.workers()) == [REMOTE, REMOTE],
            60,
            "only the remote workers connected",
        )
        run_id = stack.run_load(users=4, seconds=20)
        run = f'run_id="{run_id}"'
        assert exposed.count(f"sum(locust_requests_total{{{run}}})") > 0
        # Every failure is an answer of the API (the e2e stack seeds fewer items and users than the
        # locustfile picks from): none is a connection error, so the remote workers reached the target.
        errors = [e["metric"]["error"] for e in stack.query(f"locust_errors_total{{{run}}}")]
        assert all("HTTP" in e or "BadStatusCode" in e for e in errors), errors
        cpu = stack.query(f'locust_worker_cpu_usage_ratio{{{run}, host="{REMOTE}"}}')
        assert sorted(s["metric"]["worker"].split("/")[0] for s in cpu) == [REMOTE, REMOTE], cpu
    finally:
        docker.from_env().networks.get(network).disconnect(api)

    down = exposed.lab("workers", "down")
    assert down.returncode == 0, down.stderr
    assert exposed.remote_containers() == []
    stack.wait_for(lambda: exposed.workers() == [], 30, "the master to see the remote workers leave")
    stack.wait_for(
        lambda: exposed.count(f"sum(locust_workers{{{run}}})") == 0, 60, "no workers left in the metrics"
    )
    assert stack.query(f'locust_worker_state{{host="{REMOTE}"}}') == []


@pytest.fixture
def other_locust_image(exposed):
    """The lab's worker image with another Locust release installed over the pinned one."""
    base = Lab.from_environment(exposed.env).setting("LOCUST_IMAGE", "loadlab/locust:0.1.0")
    tag = f"loadlab/locust:e2e{SLOT}-locust-{OTHER_LOCUST}"
    dockerfile = f"FROM {base}\nUSER root\nRUN pip install --no-cache-dir --no-deps locust=={OTHER_LOCUST}\n"
    build = subprocess.run(
        ["docker", "build", "--network", "host", "-t", tag, "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    if build.returncode != 0 and OFFLINE_PIP.search(build.stdout + build.stderr):
        pytest.skip(f"PyPI is not reachable: cannot install locust=={OTHER_LOCUST} into an image")
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    yield tag
    subprocess.run(["docker", "image", "rm", tag], capture_output=True)


def test_a_worker_of_another_locust_version_is_refused_naming_both(exposed, other_locust_image):
    before = len(exposed.workers())
    result = exposed.lab(
        "workers", "up", "--master", exposed.master, "--count", "1", "--name", "other-e2e",
        env={"LOCUST_IMAGE": other_locust_image},
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "lab: error: the master refused the workers:" in result.stderr
    assert f"runs Locust {OTHER_LOCUST} but the master runs Locust {locust.__version__}" in result.stderr
    assert exposed.remote_containers() == []
    assert not [w for w in exposed.workers() if w["id"].startswith("other-e2e_")]
    assert len(exposed.workers()) == before
