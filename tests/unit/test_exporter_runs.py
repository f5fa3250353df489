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


def test_frozen_stats_equal_locusts_and_stay_as_they_were_when_the_live_ones_go_on():
    from locust.stats import RequestStats

    live = RequestStats()
    for rt in (4, 4, 12, 150, 1200):
        live.log_request("GET", "/a", rt, 10)
    live.log_request("POST", "/b", 7, 0)
    live.log_error("GET", "/a", "500 Server Error")
    live.history.append({"time": "t0", "current_rps": 1.0})

    frozen = runs.copy_stats(live)

    def figures(stats):
        entries = (stats.total, *stats.entries.values())
        return [
            (e.name, e.method, e.num_requests, e.num_failures, e.total_response_time, e.min_response_time,
             e.max_response_time, e.total_content_length, dict(e.response_times), dict(e.num_reqs_per_sec),
             e.get_response_time_percentile(0.95), e.get_current_response_time_percentile(0.5))
            for e in entries
        ] + [(k, v.occurrences) for k, v in stats.errors.items()] + [list(stats.history)]  # fmt: skip

    before = figures(live)
    assert figures(frozen) == before
    assert all(e.stats is frozen for e in frozen.entries.values()) and frozen.total.stats is frozen
    for rt in (3, 3000):  # the live stats go on; a new name too
        live.log_request("GET", "/a", rt, 10)
        live.log_request("GET", "/c", rt, 10)
    live.log_error("GET", "/a", "500 Server Error")
    live.history.append({"time": "t1", "current_rps": 2.0})
    assert figures(frozen) == before
