"""The whole stack on a real engine: healthy, wired end to end, scalable, and its data kept across restarts."""

import docker
import pytest

from lab.cli import targets
from lab.core.config import Lab

pytestmark = pytest.mark.e2e

SERVICES = {
    "api",
    "postgres",
    "redis",
    "postgres-exporter",
    "redis-exporter",
    "node-exporter",
    "process-exporter",
    "locust-master",
    "locust-worker",
    "prometheus",
}
# Steps that run once on `lab up`, then exit.
ONE_SHOT = {"postgres-roles"}
JOBS = {"locust", "api", "postgres", "redis", "node", "process", "prometheus"}


def project_containers(stack) -> list:
    client = docker.from_env()
    return client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={stack.env['LAB_PROJECT']}"}
    )


def test_every_service_is_running_and_healthy(stack):
    result = stack.lab("status")
    containers = project_containers(stack)
    services = {c.labels["com.docker.compose.service"] for c in containers}
    assert SERVICES | ONE_SHOT <= services, result.stdout
    for container in containers:
        if container.labels["com.docker.compose.service"] in ONE_SHOT:
            assert (container.status, container.attrs["State"]["ExitCode"]) == ("exited", 0), container.name
            assert f"{container.name:<36} done" in result.stdout
            continue
        assert container.attrs["State"]["Health"]["Status"] == "healthy", container.name
    assert sum(c.labels["com.docker.compose.service"] == "locust-worker" for c in containers) == 2


def test_every_prometheus_target_is_up(stack):
    up = stack.wait_for(
        lambda: (
            (r := stack.query("up")) and {s["metric"]["job"] for s in r if s["value"][1] == "1"} >= JOBS and r
        ),
        60,
        "not every Prometheus target came up",
    )
    assert {s["metric"]["job"] for s in up} == JOBS
    assert all(s["value"][1] == "1" for s in up), up


def test_published_ports_are_only_the_three_uis_on_loopback(stack):
    published = {
        (binding["HostIp"], binding["HostPort"])
        for container in project_containers(stack)
        for bindings in (container.ports or {}).values()
        for binding in bindings or ()
    }
    # Grafana is not in the offline stack.
    assert published == {
        ("127.0.0.1", stack.env["LOCUST_WEB_PORT"]),
        ("127.0.0.1", stack.env["PROMETHEUS_PORT"]),
    }


def test_a_run_reaches_prometheus_from_every_layer(loaded_stack):
    run, at = f'run_id="{loaded_stack.run_id}"', loaded_stack.at
    requests = loaded_stack.query(f"sum(locust_requests_total{{{run}}})", at=at)
    assert requests and float(requests[0]["value"][1]) > 0
    assert loaded_stack.query(f"locust_request_duration_seconds_bucket{{{run}}}", at=at)
    assert loaded_stack.query('sum(http_requests_total{job="api", handler=~"/api/v1/.*"}) > 0', at=at)
    assert loaded_stack.query('pg_stat_database_xact_commit{job="postgres", datname="lab"} > 0', at=at)
    assert loaded_stack.query('redis_commands_processed_total{job="redis"} > 0', at=at)


def test_the_system_exporters_see_the_host_and_the_services_under_load(loaded_stack):
    at = loaded_stack.at
    assert loaded_stack.query('count(node_cpu_seconds_total{job="node", mode="idle"}) > 0', at=at)
    # CPU each group used over the run (it ended at most a minute before `at`).
    used = {
        s["metric"]["groupname"]: float(s["value"][1])
        for s in loaded_stack.query(
            'sum by (groupname) (increase(namedprocess_namegroup_cpu_seconds_total{job="process"}[2m]))',
            at=at,
        )
    }
    busy = {"api", "postgres", "redis", "locust-master", "locust-worker"}
    assert {group for group in busy if used.get(group, 0) > 0} == busy, used
    procs = {
        s["metric"]["groupname"]: int(s["value"][1])
        for s in loaded_stack.query('namedprocess_namegroup_num_procs{job="process"}', at=at)
    }
    # The stack's two workers at least (another lab stack on this machine would add its own).
    assert procs.get("locust-worker", 0) >= 2 and procs.get("postgres", 0) > 1, procs


@pytest.mark.lifecycle
def test_workers_scale_to_three_and_the_master_counts_them(stack):
    stack.lab("up", "--workers", "3")
    stack.wait_for(
        lambda: (
            stack.query("sum(locust_workers)") and stack.query("sum(locust_workers)")[0]["value"][1] == "3"
        ),
        90,
        "the master did not count 3 workers",
    )
    stack.lab("up", "--workers", "2")


@pytest.mark.lifecycle
def test_down_leaves_no_containers_and_up_keeps_prometheus_data(loaded_stack):
    stack = loaded_stack
    at = stack.at
    before = stack.query(f'locust_requests_total{{run_id="{stack.run_id}"}}', at=at)
    assert before

    stack.lab("down")
    assert project_containers(stack) == []
    assert not targets.path(Lab.from_environment(stack.env)).exists()  # its TARGET_METRICS file goes too

    stack.lab("up", timeout=900)
    after = stack.wait_for(
        lambda: stack.query(f'locust_requests_total{{run_id="{stack.run_id}"}}', at=at),
        60,
        "the run's series did not come back after a restart",
    )
    assert sorted(s["value"][1] for s in after) == sorted(s["value"][1] for s in before)
