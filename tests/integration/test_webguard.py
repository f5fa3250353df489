"""A real Locust master with one worker and the full lab plugin: the web UI refuses what another site's
page could send (cross-origin requests, DNS rebinding), with and without LOCUST_WEB_PASSWORD, while
the UI's own page, curl and `lab run` keep working."""

import threading
import time
from pathlib import Path

import pytest
import requests

from lab.cli.run import Master
from lab.core.errors import LabError
from tests.integration import exporter_target
from tests.support.local_services import wait_until
from tests.support.locust import PLUGIN, LocustProcesses, locust_env

REPO = Path(__file__).resolve().parent.parent.parent
PASSWORD = "correct-horse-battery"
FOREIGN = "http://evil.example"


class Ui:
    """The master's web UI as a client sends to it: with the password when there is one."""

    def __init__(self, url: str, auth, log: Path, started: float):
        self.url, self.auth, self.log, self.started = url, auth, log, started

    def request(self, method: str, path: str, headers: dict | None = None, **kwargs) -> requests.Response:
        return requests.request(
            method, self.url + path, headers=headers or {}, auth=self.auth, timeout=10, **kwargs
        )

    def stats(self) -> dict:
        return self.request("GET", "/stats/requests").json()

    def requests_so_far(self) -> int:
        return next(s["num_requests"] for s in self.stats()["stats"] if s["name"] == "Aggregated")


@pytest.fixture(scope="module")
def target():
    server = exporter_target.serve()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module", params=[None, PASSWORD], ids=["open", "password"])
def ui(request, tmp_path_factory, target):
    password = request.param
    workdir = tmp_path_factory.mktemp("webguard")
    env = locust_env(workdir / "results", LOCUST_WEB_USER="tester", LOCUST_WEB_PASSWORD=password or "")
    auth = ("tester", password) if password else None
    started = time.monotonic()
    with LocustProcesses(
        workdir,
        [REPO / "tests" / "integration" / "webguard_locustfile.py", PLUGIN],
        workers=1,
        web=True,
        args=["--exporter-port", "0", "--host", target],
        env={**env, "LOCUST_SCENARIOS_FILE": str(REPO / "locust" / "scenarios.yaml"),
             "LOCUST_SLO_FILE": str(REPO / "locust" / "slo.yaml")},
    ) as locust:  # fmt: skip
        locust.wait_ready(auth=auth)
        yield Ui(locust.web_url, auth, workdir / "master.log", started)


def swarm_form(target: str) -> dict:
    return {"user_count": 1, "spawn_rate": 1, "host": target, "run_time": "60s"}


def test_a_cross_origin_swarm_is_refused_and_the_runner_stays_ready(ui, target):
    for headers in (
        {"Origin": FOREIGN},
        {"Origin": "null"},  # a sandboxed frame or a redirect
        {"Referer": FOREIGN + "/page.html"},  # a browser that sends no Origin
        {"Origin": ui.url.replace("127.0.0.1", "localhost")},  # another origin, loopback or not
    ):
        response = ui.request("POST", "/swarm", headers, data=swarm_form(target))
        assert response.status_code == 403, headers
        assert response.json()["success"] is False and "another site" in response.json()["message"]
        assert "\n" not in response.text.strip()
    assert ui.stats()["state"] == "ready"


def test_foreign_stop_and_reset_leave_a_running_test_running_with_its_stats(ui, target):
    own = {"Origin": ui.url}
    assert ui.request("POST", "/swarm", own, data=swarm_form(target)).json()["success"] is True
    wait_until(lambda: ui.stats()["state"] == "running" and ui.requests_so_far() >= 20, 30, what="requests")
    before = ui.requests_so_far()

    for path in ("/stop", "/stats/reset"):
        for headers in ({"Origin": FOREIGN}, {"Referer": FOREIGN + "/"}):
            assert ui.request("POST", path, headers).status_code == 403, (path, headers)
            assert ui.request("GET", path, headers).status_code == 403, (path, headers)
    stats = ui.stats()
    assert stats["state"] == "running" and stats["user_count"] == 1
    assert ui.requests_so_far() >= before  # not reset

    # The UI's own page resets; a client with no browser page (curl, `lab run`) stops.
    assert ui.request("POST", "/stats/reset", {"Referer": ui.url + "/"}).status_code == 200
    wait_until(lambda: ui.requests_so_far() < before, 10, what="the stats to be reset")
    assert ui.request("POST", "/stop").status_code == 200
    wait_until(lambda: ui.stats()["state"] == "stopped", 30, what="the test to stop")


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "127.0.0.1:1"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/stats/requests"),
        ("GET", "/stats/report"),
        ("GET", "/lab/run"),
        ("GET", "/assets/index.js"),
        ("GET", "/no-such-route"),
        ("OPTIONS", "/stats/requests"),
        ("POST", "/swarm"),
        ("POST", "/stop"),
        ("POST", "/stats/reset"),
    ],
)
def test_a_foreign_host_gets_nothing_on_any_route(ui, host, method, path):
    response = ui.request(method, path, {"Host": host})
    assert response.status_code == 403
    # Not even a password prompt without credentials: webguard answers before webauth.
    assert requests.request(method, ui.url + path, headers={"Host": host}, timeout=10).status_code == 403
    assert response.json() == {
        "success": False,
        "message": f"Host {host!r} is not one this lab serves: open the UI by its loopback address, "
        "or add the name to LAB_WEB_HOSTS in the lab's .env",
    }


def test_another_site_cannot_read_the_ui_either(ui):
    # Locust answers `Access-Control-Allow-Origin: *`: a fetch from another site carries its Origin.
    assert ui.request("GET", "/stats/requests", {"Origin": FOREIGN}).status_code == 403


def test_the_ui_own_page_and_loopback_clients_are_served(ui):
    port = ui.url.rsplit(":", 1)[1]
    assert ui.request("GET", "/").status_code == 200
    assert ui.request("GET", "/stats/requests", {"Origin": ui.url}).status_code == 200
    assert ui.request("GET", "/", {"Host": f"localhost:{port}", "Referer": FOREIGN}).status_code == 200
    assert ui.request("GET", "/stats/requests", {"Host": f"[::1]:{port}"}).status_code == 200
    # A form on the UI's own page, under any loopback name it was opened by.
    reset = ui.request(
        "POST", "/stats/reset", {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
    )
    assert reset.status_code == 200


def test_lab_run_is_served_and_names_a_refusal(ui, monkeypatch):
    monkeypatch.setenv("LOCUST_WEB_USER", "tester")
    monkeypatch.setenv("LOCUST_WEB_PASSWORD", ui.auth[1] if ui.auth else "")
    assert Master(ui.url).stats()["worker_count"] == 1
    # 127.1 reaches 127.0.0.1 too, but it is not a name the lab serves: lab run says so.
    port = ui.url.rsplit(":", 1)[1]
    with pytest.raises(
        LabError, match=rf"refused the request: Host '127.1:{port}' is not one this lab serves"
    ):
        Master(f"http://127.1:{port}").stats()


def test_refusals_are_logged_at_most_once_a_minute(ui):
    for _ in range(20):
        ui.request("POST", "/swarm", {"Origin": FOREIGN})
    logged = ui.log.read_text().count("lab webguard: refused")
    assert 1 <= logged <= 1 + (time.monotonic() - ui.started) // 60
