"""Trimming the master's per-second stats: on Locust's real stats classes, fed worker reports over hours
of simulated seconds, a trimmed master and an untrimmed one agree on every total, percentile, current
rate and exporter sample, while the trimmed one's per-second structures stay bounded."""

import argparse

import pytest
from locust import User, constant, task
from locust.env import Environment
from locust.event import Events
from locust.stats import (
    HISTORY_STATS_INTERVAL_SEC,
    PERCENTILES_TO_REPORT,
    setup_distributed_stats_event_listeners,
    update_stats_history,
)
from prometheus_client import CollectorRegistry, generate_latest

from lab.plugin import trim
from lab.plugin.exporter import LocustCollector

NAMES = [f"/items/{i}" for i in range(20)]
START = 1_700_000_000  # a fixed past epoch second (before the stats were created), so runs agree
WINDOW = 600


class Browser(User):
    wait_time = constant(1)

    @task
    def idle(self):
        pass


def master():
    """A real environment and runner whose stats merge worker reports the way a master's do."""
    env = Environment(user_classes=[Browser], events=Events(), host="http://127.0.0.1:1")
    env.create_local_runner()
    setup_distributed_stats_event_listeners(env.events, env.stats)
    return env


@pytest.fixture
def pair():
    trimmed, untrimmed = master(), master()
    yield trimmed, untrimmed
    for env in (trimmed, untrimmed):
        env.runner.quit()


def entry_report(name: str, second: int) -> dict:
    """One second of one request name, as a worker serializes it (StatsEntryDict)."""
    n = 5 + (second * 7 + len(name)) % 11
    failures = (second + len(name)) % 4 == 0
    times = {10 + (second % 9) * 10: n - 1, 120 + (second % 5) * 10: 1}
    return {
        "name": name,
        "method": "GET",
        "last_request_timestamp": second + 0.5,
        "start_time": second,
        "num_requests": n,
        "num_none_requests": 0,
        "num_failures": int(failures),
        "total_response_time": sum(t * c for t, c in times.items()),
        "max_response_time": max(times),
        "min_response_time": min(times),
        "total_content_length": 100 * n,
        "response_times": times,
        "num_reqs_per_sec": {second: n},
        "num_fail_per_sec": {second: 1} if failures else {},
    }


def worker_report(second: int) -> dict:
    entries = [entry_report(name, second) for name in NAMES]
    total = {
        "name": "Aggregated",
        "method": "",
        "last_request_timestamp": second + 0.5,
        "start_time": second,
        "num_none_requests": 0,
        "min_response_time": min(e["min_response_time"] for e in entries),
        "max_response_time": max(e["max_response_time"] for e in entries),
        "response_times": {},
        "num_reqs_per_sec": {},
        "num_fail_per_sec": {},
    }
    for key in ("num_requests", "num_failures", "total_response_time", "total_content_length"):
        total[key] = sum(e[key] for e in entries)
    for e in entries:
        for field in ("response_times", "num_reqs_per_sec", "num_fail_per_sec"):
            for k, v in e[field].items():
                total[field][k] = total[field].get(k, 0) + v
    return {"stats": entries, "stats_total": total, "errors": {}}


def simulate(envs, seconds: int, trim_every: int = 10, on_trim=None) -> None:
    """Feed `seconds` of worker reports to each environment; trim the first one every `trim_every` s."""
    for second in range(START, START + seconds):
        report = worker_report(second)
        for env in envs:
            env.events.worker_report.fire(client_id="worker-1", data=report)
            if (second - START) % HISTORY_STATS_INTERVAL_SEC == 0:
                update_stats_history(env.runner, timestamp=str(second))
        if (second - START) % trim_every == trim_every - 1:
            trim.trim_stats(envs[0].stats, WINDOW, second + 1)
            if on_trim:
                on_trim(envs[0].stats)


def totals(entry) -> dict:
    return {
        "num_requests": entry.num_requests,
        "num_failures": entry.num_failures,
        "total_response_time": entry.total_response_time,
        "total_content_length": entry.total_content_length,
        "min": entry.min_response_time,
        "max": entry.max_response_time,
        "response_times": dict(entry.response_times),
        "percentiles": [entry.get_response_time_percentile(p) for p in PERCENTILES_TO_REPORT],
        "current_rps": entry.current_rps,
        "current_fail_per_sec": entry.current_fail_per_sec,
        "total_rps": entry.total_rps,
    }


def exposition(env) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LocustCollector(env))
    return generate_latest(registry)


def test_trimming_keeps_totals_percentiles_rates_and_exporter_output(pair):
    trimmed, untrimmed = pair
    simulate([trimmed, untrimmed], seconds=1800)

    # Without the plugin every second stays.
    assert len(untrimmed.stats.total.num_reqs_per_sec) == 1800
    assert len(untrimmed.stats.history) == 1800 // HISTORY_STATS_INTERVAL_SEC
    for key in untrimmed.stats.entries:
        assert totals(trimmed.stats.entries[key]) == totals(untrimmed.stats.entries[key])
    assert totals(trimmed.stats.total) == totals(untrimmed.stats.total)
    assert trimmed.stats.total.num_requests > 0 and trimmed.stats.total.current_rps > 0
    assert exposition(trimmed) == exposition(untrimmed)
    # The kept history is the untrimmed history's tail.
    assert trimmed.stats.history == untrimmed.stats.history[-len(trimmed.stats.history) :]


def test_trimmed_structures_stay_bounded_over_hours(pair):
    trimmed, _ = pair
    sizes = []

    def measure(stats):
        sizes.append(
            (
                max(len(e.num_reqs_per_sec) for e in (stats.total, *stats.entries.values())),
                max(len(e.num_fail_per_sec) for e in (stats.total, *stats.entries.values())),
                len(stats.history),
                max(len(e.response_times_cache) for e in (stats.total, *stats.entries.values())),
            )
        )

    simulate([trimmed], seconds=2 * 3600, on_trim=measure)

    reqs, fails, history, cache = (max(column) for column in zip(*sizes, strict=True))
    assert reqs <= WINDOW + 10  # the window plus the seconds since the last trim
    assert fails <= WINDOW + 10
    assert history <= trim.history_rows(WINDOW)
    assert cache <= 20  # Locust's own bound on the current-percentile cache
    assert len(sizes) == 720 and trimmed.stats.total.num_requests > 0


def test_trim_per_second_drops_only_older_seconds():
    counts = {10: 1, 11: 2, 12: 3, 20: 4}
    assert trim.trim_per_second(counts, 12) == 2
    assert counts == {12: 3, 20: 4}


def test_trim_history_keeps_the_list_object_and_its_tail():
    history = list(range(10))
    same = history
    assert trim.trim_history(history, 3) == 7
    assert same is history and history == [7, 8, 9]
    assert trim.trim_history(history, 5) == 0 and history == [7, 8, 9]


@pytest.mark.parametrize("text", ["-1", "10", "59", "abc", ""])
def test_history_window_refuses_values_that_would_change_what_locust_shows(text):
    with pytest.raises(argparse.ArgumentTypeError, match="0 \\(off\\) or a whole number of seconds >= 60"):
        trim.history_seconds(text)


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("60", 60), ("3600", 3600)])
def test_history_window_accepts_off_and_windows_of_a_minute_or_more(text, value):
    assert trim.history_seconds(text) == value
