"""The version handshake with real Locust processes: a worker of the master's version is accepted,
one running another Locust release (installed from PyPI into a venv) is refused, naming both versions.
"""

import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import locust
import pytest
import requests

from lab.plugin.handshake import REFUSED_EXIT_CODE, VERSION_TIMEOUT
from tests.support.local_services import wait_until
from tests.support.locust import LocustProcesses, locust_env

HERE = Path(__file__).parent
REPO = HERE.parent.parent
LOCUSTFILE = HERE / "handshake_locustfile.py"
# A release other than the installed one (2.47.0), old enough to differ, new enough to talk to it.
OTHER_VERSION = "2.46.7" if locust.__version__ != "2.46.7" else "2.45.0"


@pytest.fixture(scope="module")
def other_python(tmp_path_factory) -> str:
    """A venv with another Locust release on top of this environment's packages (the project's .venv,
    not the base interpreter's, which `--system-site-packages` would give)."""
    venv = tmp_path_factory.mktemp("other-locust") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    own = Path(sysconfig.get_paths(vars={"base": str(venv)})["purelib"])
    # After the venv's own site-packages (so its Locust wins), with this environment's .pth files processed.
    (own / "project-environment.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
    )
    pip = subprocess.run(
        [
            str(venv / "bin/python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            f"locust=={OTHER_VERSION}",
        ],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0 and re.search(
        r"No matching distribution|NewConnectionError|Temporary failure in name resolution", pip.stderr
    ):
        pytest.skip(f"PyPI is not reachable: cannot install locust=={OTHER_VERSION}")
    assert pip.returncode == 0, pip.stderr
    return str(venv / "bin/python")


@pytest.fixture
def master(tmp_path):
    with LocustProcesses(tmp_path, [LOCUSTFILE], master=True, web=True) as locust:
        locust.wait_ready(30)
        yield locust


def start_worker(
    master: LocustProcesses, python: str, workdir: Path, name: str, locustfile: Path = LOCUSTFILE
) -> subprocess.Popen:
    env = locust_env(LAB_WORKER_READY_FILE=str(workdir / f"{name}.ready"))
    return master.add_worker(python, [locustfile], env, stdout=subprocess.PIPE)


def workers(web_url: str) -> list[dict]:
    return requests.get(f"{web_url}/stats/requests", timeout=5).json()["workers"]


def test_a_worker_of_the_same_version_is_accepted_and_marked_ready(master, tmp_path):
    web_url = master.web_url
    worker = start_worker(master, sys.executable, tmp_path, "same")
    try:
        wait_until(lambda: (tmp_path / "same.ready").exists(), 30, what="the accepted worker's ready file")
        # Past the master's wait for a version report: still connected, still counted.
        time.sleep(VERSION_TIMEOUT + 2)
        assert worker.poll() is None
        assert [w["state"] for w in workers(web_url)] == ["ready"]
    finally:
        worker.terminate()
        worker.wait(timeout=15)


def test_a_worker_of_another_locust_version_is_refused_naming_both(master, tmp_path, other_python):
    web_url, master_log = master.web_url, tmp_path / "master.log"
    worker = start_worker(master, other_python, tmp_path, "other")
    output, _ = worker.communicate(timeout=60)
    assert worker.returncode == REFUSED_EXIT_CODE, output
    expected = f"runs Locust {OTHER_VERSION} but the master runs Locust {locust.__version__}"
    assert "the master refused this worker" in output and expected in output, output
    assert expected in master_log.read_text()
    assert not (tmp_path / "other.ready").exists()
    wait_until(lambda: workers(web_url) == [], 10, what="the refused worker to leave the master's list")


def test_a_worker_without_the_lab_plugin_is_refused_once_it_stays_silent(master, tmp_path):
    web_url, master_log = master.web_url, tmp_path / "master.log"
    plain = tmp_path / "plain_locustfile.py"
    plain.write_text(LOCUSTFILE.read_text().replace("handshake.register(events)", ""))
    worker = start_worker(master, sys.executable, tmp_path, "plain", plain)
    output, _ = worker.communicate(timeout=VERSION_TIMEOUT + 30)
    assert "Got quit message from master" in output, output
    assert f"did not report its Locust version within {VERSION_TIMEOUT:g}s" in master_log.read_text()
    wait_until(lambda: workers(web_url) == [], 10, what="the silent worker to leave the master's list")
