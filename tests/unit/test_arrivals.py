"""The open model's parts in process: the rate plan, the arrivals' counts, and the intended-start clock
exported exactly at the bucket level, as Locust's own response times are (tests/unit/test_exporter.py)."""

import json
import time

import gevent
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from locust import User, task
from locust.env import Environment
from locust.event import Events
from locust.stats import bucket_response_time
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lab.core.plans import RatePlan
from lab.plugin import arrivals, runs
from lab.plugin.exporter import DEFAULT_BUCKETS, LocustCollector

INTENDED = "locust_request_intended_duration_seconds"


class Pool(arrivals.ArrivalUser):
    @task
    def idle(self):
        pass


@pytest.fixture
def environment(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.RESULTS_DIR_ENV, str(tmp_path / "results"))
    events = Events()
    arrivals.register(events)
    env = Environment(user_classes=[Pool], events=events, host="http://127.0.0.1:1")
    env.create_local_runner()
    events.init.fire(environment=env, runner=env.runner, web_ui=None)
    yield env
    env.runner.quit()


def fire(env, name, response_time):
    env.events.request.fire(
        request_type="GET",
        name=name,
        response_time=response_time,
        response_length=0,
        exception=None,
        context={},
    )


def samples_of(text: str) -> dict:
    out: dict = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def expected_buckets(values_ms: list[float]) -> list[int]:
    """Samples at or below each boundary, counted on Locust's rounding of each value: what exact means."""
    rounded = [bucket_response_time(round(v)) for v in values_ms]
    return [sum(1 for r in rounded if r <= b * 1000) for b in DEFAULT_BUCKETS] + [len(rounded)]


def test_the_rate_plan_ramps_then_holds_and_keeps_the_pool():
    plan = RatePlan({"rate": 40.0, "users": 12, "ramp": 10.0, "duration": 20.0, "max_delay": 1.0})
    assert plan.duration == 30.0
    assert plan.at(0).rate == 0.0
    assert plan.at(5).rate == 20.0 and plan.at(5).stage == "ramp"
    assert plan.at(10).rate == 40.0 and plan.at(29.9).stage == "steady"
    assert {plan.at(t).users for t in (0, 5, 15)} == {12}
    assert plan.at(30) is None
    assert (
        RatePlan({"rate": 5.0, "users": 1, "ramp": 0.0, "duration": 1.0, "max_delay": 1.0}).at(0).rate == 5.0
    )


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=40000.0), min_size=1, max_size=60))
def test_both_clocks_are_exact_at_the_bucket_level_in_the_scrape_and_in_the_text(response_times):
    events = Events()
    arrivals.register(events)
    env = Environment(user_classes=[Pool], events=events, host="http://127.0.0.1:1")
    env.create_local_runner()
    events.init.fire(environment=env, runner=env.runner, web_ui=None)
    try:
        schedule = arrivals._schedule(env)
        schedule.queue.put(time.time() - 0.0373)  # an arrival that waited ~37 ms for this "user"
        schedule.take()
        late_ms = schedule.serving[gevent.getcurrent()] * 1000
        for rt in response_times:
            fire(env, "/a", rt)
        collector = LocustCollector(env)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        scraped = samples_of(generate_latest(registry).decode())
        assert samples_of(collector.exposition().decode()) == scraped  # the text written directly agrees
        for family, values in (
            ("locust_request_duration_seconds", response_times),
            (INTENDED, [rt + late_ms for rt in response_times]),
        ):
            got = [
                scraped[(f"{family}_bucket", (("le", le), ("method", "GET"), ("name", "/a"), ("run_id", "")))]
                for le in collector.les
            ]
            assert got == expected_buckets(values), family
    finally:
        env.runner.quit()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.floats(0.0, 20000.0)), min_size=1, max_size=80))
def test_workers_reports_merge_into_the_distribution_one_process_would_have(logs):
    workers = [arrivals.Totals() for _ in range(3)]
    alone, master = arrivals.Totals(), arrivals.Totals()
    for worker, ms in logs:
        for totals in (workers[worker], alone):
            totals.intended.log_request("GET", "/a", ms, 0)
            totals.lateness.log(ms / 10, 0)
            totals.arrivals += 1
    for worker in workers:
        master.merge(worker.report())
        master.merge(worker.report())  # a report with nothing new adds nothing
    assert master.arrivals == alone.arrivals
    a, b = master.intended.get("/a", "GET"), alone.intended.get("/a", "GET")
    assert dict(a.response_times) == dict(b.response_times) and a.num_requests == b.num_requests
    assert dict(master.lateness.response_times) == dict(alone.lateness.response_times)


def test_arrivals_without_a_free_user_are_dropped_and_counted_not_delayed(environment):
    schedule = arrivals._schedule(environment)
    schedule.set_rate(200.0, 0.05)
    gevent.sleep(0.5)
    queued = schedule.queue.qsize()
    schedule.stop()
    totals = arrivals.totals_of(environment)
    assert totals.arrivals > 0 and totals.dropped == totals.arrivals - queued  # nothing served, nothing lost
    assert queued <= 200.0 * 0.05 + 5  # none waits much past max_delay (the scheduler ticks every 50 ms)


def test_an_arrival_user_waits_for_its_arrival_before_each_task_the_first_too(environment):
    schedule = arrivals._schedule(environment)
    environment.runner.start(2, spawn_rate=100)
    gevent.sleep(0.2)
    assert environment.runner.user_count == 2 and arrivals.totals_of(environment).lateness.num_requests == 0
    schedule.set_rate(20.0, 1.0)
    gevent.sleep(1.0)
    schedule.set_rate(0.0, 1.0)
    gevent.sleep(0.2)
    totals = arrivals.totals_of(environment)
    assert totals.dropped == 0
    assert totals.lateness.num_requests == totals.arrivals > 0  # each arrival ran one task
    schedule.stop()
    environment.runner.stop()


def test_the_rate_scenario_runs_only_the_classes_that_take_arrivals():
    from lab.core.yamlconf import ConfigError
    from lab.plugin.shapes import Rate

    class Closed(User):
        @task
        def idle(self):
            pass

    env = Environment(user_classes=[Closed], events=Events(), host="http://127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"rate: none of the user classes \(Closed\) takes arrivals"):
        Rate().make_plan(env)
    env = Environment(user_classes=[Closed, Pool], events=Events(), host="http://127.0.0.1:1")
    shape = Rate()
    shape.params = {"rate": 5.0, "users": 2, "ramp": 0.0, "duration": 1.0, "max_delay": 1.0}
    shape.make_plan(env)
    assert shape.pool == [Pool]  # a rate run leaves the closed classes out


def test_arrivals_follow_the_rate_as_it_changes_by_wall_clock(environment):
    schedule = arrivals._schedule(environment)
    totals = arrivals.totals_of(environment)
    started = time.time()
    schedule.set_rate(10.0, 60.0)  # nobody takes them: a long max_delay keeps them queued, not dropped
    gevent.sleep(1.0)
    changed = time.time()
    schedule.set_rate(40.0, 60.0)
    gevent.sleep(0.5)
    ended = time.time()
    due = totals.arrivals
    schedule.stop()
    # Every arrival due by now was queued at its own time (the scheduler catches up when woken late).
    expected = 1 + 10.0 * (changed - started) + 40.0 * (ended - changed)
    assert abs(due - expected) <= 3, (due, expected)
    assert totals.dropped == 0


def test_per_second_counts_merge_and_start_again_at_each_report():
    worker, master = arrivals.Totals(), arrivals.Totals()
    for due in (100.2, 100.7, 101.1):
        worker.count_due(due)
    worker.count_dropped(100.7)
    worker.count_started(101.5, 0.3)
    master.merge(worker.report())
    worker.count_due(101.9)
    master.merge(worker.report())
    master.merge(worker.report())  # nothing new
    assert master.due_per_sec == {100: 2, 101: 2} and master.arrivals == 4
    assert master.dropped_per_sec == {100: 1} and master.dropped == 1
    assert master.started_per_sec == {101: 1} and master.lateness.num_requests == 1


def test_an_ended_runs_arrival_series_stay_frozen_and_the_next_run_starts_from_zero(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.RESULTS_DIR_ENV, str(tmp_path / "results"))
    events = Events()
    runs.register(events)  # in the plugin's order: the run ends (and freezes) before arrivals reset
    arrivals.register(events)
    env = Environment(user_classes=[Pool], events=events, host="http://127.0.0.1:1")
    env.create_local_runner()
    events.init.fire(environment=env, runner=env.runner, web_ui=None)
    collector = LocustCollector(env)
    try:
        env.runner.start(2, spawn_rate=100)
        gevent.sleep(0.1)
        arrivals.set_rate(env, 40.0, 1.0)
        gevent.sleep(0.6)
        first = runs.current(env)
        env.runner.stop()
        assert first.state == "ended"
        ended = samples_of(collector.exposition().decode())
        first_labels = (("run_id", first.run_id),)
        due = ended[("locust_arrivals_total", first_labels)]
        assert due > 0 and ended[("locust_arrival_lateness_seconds_count", first_labels)] > 0
        # What changes the live totals after the end (a late report, a reset) leaves the run's series as they were.
        arrivals.totals_of(env).count_due(time.time())
        events.reset_stats.fire()
        assert samples_of(collector.exposition().decode()) == ended
        assert first.figures.arrivals.arrivals == due
        written = json.loads((first.results_dir / "arrivals.json").read_text())
        assert (written["run_id"], written["arrivals"]) == (first.run_id, due)
        assert written["started"] == ended[("locust_arrival_lateness_seconds_count", first_labels)]
        env.runner.start(2, spawn_rate=100)
        gevent.sleep(0.1)
        second = runs.current(env)
        assert second is not first
        now = samples_of(collector.exposition().decode())
        assert not any(dict(labels).get("run_id") == first.run_id for _name, labels in now)
        assert ("locust_arrivals_total", (("run_id", second.run_id),)) not in now  # nothing offered yet
        arrivals.set_rate(env, 40.0, 1.0)
        gevent.sleep(0.3)
        now = samples_of(collector.exposition().decode())
        assert 0 < now[("locust_arrivals_total", (("run_id", second.run_id),))] < due
        env.runner.stop()
    finally:
        env.runner.quit()
