"""The Locust master with the full lab plugin and LOCUST_WEB_PASSWORD set: every route of the web UI
and its API asks for the password, and `lab run`'s client sends it from the environment. Compose
hands the .env settings to the master."""

import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from lab.cli.run import Master
from lab.core.errors import LabError
from tests.integration.test_compose_config import compose_config
from tests.support.locust import PLUGIN, LocustProcesses, locust_env

REPO = Path(__file__).resolve().parent.parent.parent
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("webauth")
    env = locust_env(workdir / "results", LOCUST_WEB_USER="tester", LOCUST_WEB_PASSWORD=PASSWORD)
    with LocustProcesses(
        workdir,
        [REPO / "locust" / "locustfile.py", PLUGIN],
        web=True,
        args=[
            "--exporter-port", "0", "--host", "http://127.0.0.1:9",
            "--scenarios-file", str(REPO / "locust" / "scenarios.yaml"),
            "--slo-file", str(REPO / "locust" / "slo.yaml"),
        ],
        env=env,
    ) as locust:  # fmt: skip
        # The web UI answers 401 without the password: wait_ready takes any status code.
        locust.wait_ready()
        yield locust.web_url


@pytest.mark.parametrize("path", ["/", "/stats/requests", "/lab/run", "/swarm"])
def test_without_the_password_every_route_answers_401_with_a_basic_challenge(master, path):
    response = requests.get(master + path, timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="Load Lab"')
    assert "LOCUST_WEB_PASSWORD" in response.text


@pytest.mark.parametrize("auth", [("tester", "wrong"), ("lab", PASSWORD), ("tester", "")])
def test_a_wrong_user_or_password_is_refused(master, auth):
    assert requests.get(master + "/stats/requests", auth=auth, timeout=5).status_code == 401


def test_the_right_credentials_open_the_ui_and_the_api(master):
    auth = ("tester", PASSWORD)
    assert requests.get(master + "/", auth=auth, timeout=5).status_code == 200
    stats = requests.get(master + "/stats/requests", auth=auth, timeout=5)
    assert stats.status_code == 200 and stats.json()["state"] == "ready"
    assert requests.get(master + "/lab/run", auth=auth, timeout=5).status_code == 404  # no run yet


def test_lab_run_sends_the_password_from_the_environment(master, monkeypatch):
    monkeypatch.setenv("LOCUST_WEB_USER", "tester")
    monkeypatch.setenv("LOCUST_WEB_PASSWORD", PASSWORD)
    assert Master(master).stats()["state"] == "ready"

    monkeypatch.setenv("LOCUST_WEB_PASSWORD", "wrong")
    with pytest.raises(LabError, match="asks for a password: set LOCUST_WEB_USER and LOCUST_WEB_PASSWORD"):
        Master(master).stats()


@pytest.mark.skipif(
    not shutil.which("docker")
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode,
    reason="needs the docker CLI with Compose v2",
)
def test_compose_hands_the_password_and_the_history_window_to_the_master(tmp_path):
    extra = "LOCUST_WEB_PASSWORD=pw-from-env-file\nLOCUST_LAB_HISTORY_SECONDS=900\n"
    master = compose_config(tmp_path, offline=True, extra=extra)["services"]["locust-master"]
    assert master["environment"]["LOCUST_WEB_PASSWORD"] == "pw-from-env-file"
    assert master["environment"]["LOCUST_WEB_USER"] == "lab"
    assert master["environment"]["LOCUST_LAB_HISTORY_SECONDS"] == "900"
