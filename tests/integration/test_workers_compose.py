"""The master-port override and the workers' compose file as Compose v2 reads them."""

import json
import subprocess

from lab.cli.workers import compose_command
from lab.core.config import Lab
from tests.support.compose import ROOT, env_file, needs_compose, run_compose

pytestmark = needs_compose


def config(tmp_path, settings: str, build) -> subprocess.CompletedProcess:
    lab = Lab.from_environment(
        {"LAB_HOME": str(ROOT), "LAB_ENV_FILE": str(env_file(tmp_path, settings)), "LAB_OFFLINE": "0"}
    )
    return run_compose(build(lab, "config", "--format", "json"))


def stack(lab, *args):
    return lab.compose_command(*args)


def test_the_worker_port_is_published_only_when_asked_and_on_the_given_address(tmp_path):
    closed = json.loads(config(tmp_path, "", stack).stdout)["services"]["locust-master"]["ports"]
    assert [p["target"] for p in closed] == [8089]
    result = config(
        tmp_path, "LAB_EXPOSE_MASTER=1\nLAB_MASTER_BIND=10.0.0.5\nLOCUST_MASTER_PORT=15557\n", stack
    )
    assert result.returncode == 0, result.stderr
    ports = json.loads(result.stdout)["services"]["locust-master"]["ports"]
    assert {(p["host_ip"], p["published"], p["target"]) for p in ports} == {
        ("127.0.0.1", "8089", 8089),
        ("10.0.0.5", "15557", 5557),
    }


def test_exposing_the_master_without_an_address_is_refused_by_compose_too(tmp_path):
    result = config(tmp_path, "LAB_EXPOSE_MASTER=1\n", stack)
    assert result.returncode != 0
    assert "LAB_EXPOSE_MASTER=1 needs LAB_MASTER_BIND" in result.stderr


def test_the_workers_file_runs_the_stack_image_against_the_given_master(tmp_path):
    settings = "LAB_MASTER_HOST=10.0.0.5\nLAB_MASTER_PORT=15557\nLAB_WORKER_HOSTNAME=edge1\n"
    result = config(tmp_path, settings, compose_command)
    assert result.returncode == 0, result.stderr
    worker = json.loads(result.stdout)["services"]["locust-worker"]
    master = json.loads(config(tmp_path, "", stack).stdout)["services"]["locust-master"]
    assert worker["image"] == master["image"] and worker["build"] == master["build"]
    assert worker["volumes"][0]["source"] == master["volumes"][0]["source"] == str(ROOT / "locust")
    assert worker["environment"]["LOCUST_LOCUSTFILE"] == master["environment"]["LOCUST_LOCUSTFILE"]
    assert worker["environment"]["LOCUST_MASTER_NODE_HOST"] == "10.0.0.5"
    assert worker["environment"]["LOCUST_MASTER_NODE_PORT"] == "15557"
    assert worker["hostname"] == "edge1" and worker["command"] == ["--worker"]
    assert "ports" not in worker


def test_the_workers_file_needs_the_master(tmp_path):
    result = config(tmp_path, "LAB_WORKER_HOSTNAME=edge1\n", compose_command)
    assert result.returncode != 0 and "set by lab workers up --master" in result.stderr
