"""Who the stack's processes run as: every service but Locust as a non-root user of its image; Locust
as LAB_UID/LAB_GID from .env (the user who ran `lab up`, so that results belong to them)."""

from pathlib import Path

import docker
import pytest

from lab.core.config import parse_env_file

pytestmark = pytest.mark.e2e

# Grafana is not in the offline stack (no Debian package); checked when it runs.
NON_ROOT = {"api", "postgres", "redis", "postgres-exporter", "redis-exporter", "prometheus", "grafana"}


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
