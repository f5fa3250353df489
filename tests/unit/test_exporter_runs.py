"""The run lifecycle (lab.plugin.runs) on a real in-process Locust local runner and its web UI."""

import csv
import json
import sys

import gevent
import pytest
from locust import User, constant, task
from locust.env import Environment
from locust.event import Events

from lab.plugin import runs


class Idler(User):
    wait_time = constant(0.1)

    @task
    def idle(self):
        self.environment.events.request.fire(
            request_type="GET",
            name="/idle",
            response_time=4.0,
            response_length=10,
            exception=None,
            context={},
        )


@pytest.fixture
def environment(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.RESULTS_DIR_ENV, str(tmp_path / "results"))
    monkeypatch.setattr(sys, "argv", ["locust"])  # the web UI parses the command line for its form
    events = Events()
    runs.register(events)
    env = Environment(user_classes=[Idler], events=events, host="http://127.0.0.1:1")
    env.create_local_runner()
    web_ui = env.create_web_ui("127.0.0.1", 0)
    events.init.fire(environment=env, runner=env.runner, web_ui=web_ui)
    yield env
    env.runner.quit()


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_run_writes_its_results_with_locusts_own_writers(environment):
    client = environment.web_ui.app.test_client()
    assert client.get("/lab/run").status_code == 404

    environment.runner.start(2, spawn_rate=100)
    gevent.sleep(0.5)
    run = runs.current(environment)
    assert run.state == "running" and run.scenario == "custom"
    body = client.get("/lab/run").get_json()
    assert (
        body["run_id"] == run.run_id and body["state"] == "running" and body["host"] == "http://127.0.0.1:1"
    )
    assert json.loads((run.results_dir / "run.json").read_text())["end"] is None

    environment.runner.stop()
    assert run.state == "ended" and client.get("/lab/run").get_json()["state"] == "ended"
    record = json.loads((run.results_dir / "run.json").read_text())
    assert (
        record["end"] >= record["start"] and record["workers_lost"] == [] and record["invalidated"] is False
    )
    rows = {row["Name"]: row for row in read_rows(run.results_dir / "locust_stats.csv")}
    assert int(rows["/idle"]["Request Count"]) == environment.stats.entries[("/idle", "GET")].num_requests > 0
    assert read_rows(run.results_dir / "locust_failures.csv") == []
    assert "<html" in (run.results_dir / "locust_report.html").read_text().lower()


def test_a_stats_reset_ends_the_run_and_starts_the_next(environment):
    environment.runner.start(2, spawn_rate=100)
    gevent.sleep(0.5)
    first = runs.current(environment)
    requests_before_reset = environment.stats.total.num_requests
    environment.events.reset_stats.fire()  # what the web UI's reset button fires before resetting
    environment.stats.reset_all()
    second = runs.current(environment)
    assert second is not first and second.run_id > first.run_id and second.state == "running"
    assert first.state == "ended"
    rows = {row["Name"]: row for row in read_rows(first.results_dir / "locust_stats.csv")}
    assert int(rows["Aggregated"]["Request Count"]) == requests_before_reset > 0
    environment.runner.stop()
    assert second.state == "ended"
