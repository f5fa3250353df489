"""Who the stack's processes run as and what they may do: every service but Locust as a non-root user
of its image, Locust as LAB_UID/LAB_GID from .env (the user who ran `lab up`, so that results belong
to them); no capabilities, no privilege gain, memory limits, least-privilege database roles; the web
UI and Prometheus refuse what another site's page could send."""

import time
from pathlib import Path

import docker
import pytest
import requests

from lab.core.config import parse_env_file

pytestmark = pytest.mark.e2e

# Grafana is not in the offline stack (no Debian package); checked when it runs.
NON_ROOT = {
    "api",
    "postgres",
    "redis",
    "postgres-exporter",
    "redis-exporter",
    "node-exporter",
    "process-exporter",
    "prometheus",
    "grafana",
}


def process_uids(stack) -> dict[str, set[int]]:
    """Service -> the UIDs of every process in its containers (as the engine's `top` sees them)."""
    client = docker.from_env()
    uids: dict[str, set[int]] = {}
    for container in client.containers.list(
        filters={"label": f"com.docker.compose.project={stack.env['LAB_PROJECT']}"}
    ):
        top = container.top(ps_args="-o pid,uid")
        column = top["Titles"].index("UID")
        service = container.labels["com.docker.compose.service"]
        uids.setdefault(service, set()).update(int(p[column]) for p in top["Processes"])
    return uids


def test_services_run_as_non_root_users(stack):
    uids = process_uids(stack)
    assert NON_ROOT - {"grafana"} <= set(uids)
    root = {service: found for service, found in uids.items() if service in NON_ROOT and 0 in found}
    assert not root, f"services running processes as root: {root}"


def test_locust_runs_as_the_user_in_env(stack):
    settings = parse_env_file(Path(stack.env["LAB_ENV_FILE"]))
    uids = process_uids(stack)
    for service in ("locust-master", "locust-worker"):
        assert uids[service] == {int(settings["LAB_UID"])}, service


def project_containers(stack, **filters) -> list:
    client = docker.from_env()
    label = f"com.docker.compose.project={stack.env['LAB_PROJECT']}"
    return client.containers.list(all=True, filters={"label": label, **filters})


def service_container(stack, service: str):
    (container, *_) = project_containers(stack, label=f"com.docker.compose.service={service}")
    return container


def test_a_cross_origin_swarm_is_refused_through_the_published_port(stack):
    form = {"user_count": "1", "spawn_rate": "1", "host": "http://127.0.0.1:1", "run_time": "5s"}
    refused = requests.post(
        stack.locust_url + "/swarm", data=form, headers={"Origin": "http://evil.example"}, timeout=10
    )
    assert refused.status_code == 403 and refused.json()["success"] is False
    rebound = requests.get(stack.locust_url + "/stats/requests", headers={"Host": "evil.example"}, timeout=10)
    assert rebound.status_code == 403
    assert requests.get(stack.locust_url + "/stats/requests", timeout=10).json()["state"] != "running"


def test_prometheus_cannot_be_stopped_or_read_by_another_site(stack):
    assert requests.post(stack.prometheus_url + "/-/quit", timeout=10).status_code != 200
    time.sleep(2)  # a stopping Prometheus would be gone by now
    assert requests.get(stack.prometheus_url + "/-/ready", timeout=10).status_code == 200
    query = requests.get(
        stack.prometheus_url + "/api/v1/query",
        params={"query": "up"},
        headers={"Origin": "http://evil.example"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in query.headers


def test_every_container_runs_with_no_new_privileges_and_no_capabilities(stack):
    containers = project_containers(stack)
    assert {c.labels["com.docker.compose.service"] for c in containers} >= NON_ROOT - {"grafana"}
    for container in containers:
        host = container.attrs["HostConfig"]
        name = container.name
        assert "no-new-privileges:true" in (host["SecurityOpt"] or []), name
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], name
        assert host["Memory"] > 0, f"{name}: no memory limit"
        assert not host["Privileged"], name
        if container.status != "running":  # postgres-roles: done, checked above
            continue
        # What the kernel says about the container's first process.
        status = dict(
            line.split(":\t", 1)
            for line in container.exec_run(["cat", "/proc/1/status"]).output.decode().splitlines()
            if ":\t" in line
        )
        assert status["NoNewPrivs"].strip() == "1", name
        for capabilities in ("CapBnd", "CapPrm", "CapEff"):  # bounding set empty: none can come back
            assert int(status[capabilities], 16) == 0, (name, capabilities, status[capabilities])


def psql(stack, sql: str) -> str:
    result = service_container(stack, "postgres").exec_run(["psql", "-U", "lab", "-d", "lab", "-tAc", sql])
    assert result.exit_code == 0, result.output
    return result.output.decode().strip()


def test_the_api_and_the_exporter_use_their_own_unprivileged_roles(stack):
    roles = psql(
        stack,
        "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, pg_has_role(rolname, 'pg_monitor', 'member') "
        "FROM pg_roles WHERE rolname IN ('lab_api', 'lab_exporter') ORDER BY rolname",
    )
    assert roles.splitlines() == ["lab_api|f|f|f|f", "lab_exporter|f|f|f|t"]
    # Connected as those roles, not as the superuser `lab`.
    stack.wait_for(
        lambda: (
            psql(stack, "SELECT DISTINCT usename FROM pg_stat_activity WHERE usename LIKE 'lab_%' ORDER BY 1")
            == "lab_api\nlab_exporter"
        ),
        30,
        "the API and the exporter are not connected as lab_api and lab_exporter",
    )
    assert psql(stack, "SELECT tableowner FROM pg_tables WHERE tablename = 'items'") == "lab_api"


def test_the_locust_image_holds_only_the_plugin_dependencies(stack):
    found = service_container(stack, "locust-master").exec_run(
        [
            "python",
            "-c",
            "import importlib.util as u; print([m for m in ('matplotlib', 'docker', 'grafanalib') if u.find_spec(m)])",
        ]
    )
    assert found.output.decode().strip() == "[]"


def test_the_master_healthcheck_follows_the_exporter_port(stack):
    master = service_container(stack, "locust-master")
    probe = ["python", "/opt/loadlab/healthcheck.py"]
    assert master.exec_run(probe).exit_code == 0
    # With the exporter off (0) the web UI answers; a port nothing listens on fails the check.
    assert master.exec_run(probe, environment={"LOCUST_EXPORTER_PORT": "0"}).exit_code == 0
    assert master.exec_run(probe, environment={"LOCUST_EXPORTER_PORT": "1"}).exit_code != 0
