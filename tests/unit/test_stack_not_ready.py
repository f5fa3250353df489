"""Which services `lab up` names when the stack did not become healthy (lab.cli.stack.not_ready), on
docker's own Container model built from the attributes the engine returns."""

from docker.models.containers import Container

from lab.cli.stack import not_ready


def container(service: str, status: str, exit_code: int = 0, health: str | None = None, restart: str = "no"):
    state = {"Status": status, "ExitCode": exit_code}
    if health:
        state["Health"] = {"Status": health}
    return Container(
        attrs={
            "Id": service,
            "Name": f"/loadlab-{service}-1",
            "Config": {"Labels": {"com.docker.compose.service": service}},
            "State": state,
            "HostConfig": {"RestartPolicy": {"Name": restart}},
        }
    )


def test_a_one_shot_step_that_finished_is_not_named_and_a_failed_one_is():
    containers = [
        container("postgres", "running", health="healthy"),
        container("postgres-roles", "exited", 0),
        container("api", "running", health="unhealthy", restart="unless-stopped"),
        container("locust-worker", "running"),
        container("locust-worker", "exited", 1, restart="unless-stopped"),
    ]
    assert not_ready(containers) == ["api", "locust-worker"]
    assert not_ready([container("postgres-roles", "exited", 3)]) == ["postgres-roles"]
    # A service that restarts by policy and exited 0 did not finish: it stopped.
    assert not_ready([container("redis", "exited", 0, restart="unless-stopped")]) == ["redis"]
