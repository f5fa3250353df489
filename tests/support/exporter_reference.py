"""The exporter as it rendered /metrics before the cached exposition: the reference of the golden test
(tests/unit/test_exporter_golden.py) and the "old" column of bench/exporter.py.

Every request family is rebuilt at each scrape (each folded row's response times merged, then
bucketed) and rendered by prometheus_client's `generate_latest`. The pure helpers it shares with
lab.plugin.exporter (folding, error normalisation, bucket counting, the worker families) are imported,
so that what differs is only how the request families are built and rendered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from lab.plugin.exporter import (
    DEFAULT_BUCKETS,
    DEFAULT_MAX_ERRORS,
    DEFAULT_MAX_NAMES,
    RUNNER_STATES,
    Folder,
    cumulative_buckets,
    fold_errors,
    worker_metrics,
)


class Series:
    __slots__ = ("requests", "failures", "content_length", "duration_sum_ms", "response_times")

    def __init__(self) -> None:
        self.requests = 0
        self.failures = 0
        self.content_length = 0
        self.duration_sum_ms = 0.0
        self.response_times: dict[int, int] = defaultdict(int)

    def add(self, entry) -> None:
        self.requests += entry.num_requests
        self.failures += entry.num_failures
        self.content_length += entry.total_content_length
        self.duration_sum_ms += entry.total_response_time
        for value, count in entry.response_times.items():
            self.response_times[value] += count


def fold_entries(entries: Iterable, names: Folder) -> dict[tuple[str, str], Series]:
    rows: dict[tuple[str, str], Series] = {}
    for entry in sorted(entries, key=lambda e: (e.name, e.method or "")):
        key = (entry.method or "", names(entry.name))
        rows.setdefault(key, Series()).add(entry)
    return rows


class ReferenceCollector:
    """lab.plugin.exporter.LocustCollector as it was, request families rebuilt at every scrape."""

    def __init__(
        self, environment, buckets=DEFAULT_BUCKETS, max_names=DEFAULT_MAX_NAMES, max_errors=DEFAULT_MAX_ERRORS
    ):
        self.environment = environment
        self.buckets = tuple(buckets)
        self.bounds_ms = [round(b * 1000, 6) for b in self.buckets]
        self.les = [floatToGoString(b) for b in self.buckets] + ["+Inf"]
        self.max_names = max_names
        self.max_errors = max_errors
        self.folding_run: str | None = None
        self.names = Folder("name", max_names)
        self.errors = Folder("error", max_errors)

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator:
        from lab.plugin.runs import current

        runner = self.environment.runner
        if runner is None:
            return
        run = current(self.environment)
        run_id = run.run_id if run else ""
        if run_id != self.folding_run:
            self.folding_run = run_id
            self.names = Folder("name", self.max_names)
            self.errors = Folder("error", self.max_errors)
        yield from self.request_metrics(run_id, runner.stats)
        yield from self.runner_metrics(run_id, runner)
        if run is not None:
            yield from self.run_metrics(run)

    def request_metrics(self, run_id: str, stats) -> Iterator:
        labels = ["run_id", "method", "name"]
        requests = CounterMetricFamily("locust_requests", "Requests completed", labels=labels)
        failures = CounterMetricFamily("locust_request_failures", "Requests failed", labels=labels)
        size = CounterMetricFamily("locust_response_size_bytes", "Response bytes received", labels=labels)
        duration = HistogramMetricFamily(
            "locust_request_duration_seconds", "Response time (Locust's rounded distribution)", labels=labels
        )
        for (method, name), row in fold_entries(stats.entries.values(), self.names).items():
            values = [run_id, method, name]
            requests.add_metric(values, row.requests)
            failures.add_metric(values, row.failures)
            size.add_metric(values, row.content_length)
            counts = cumulative_buckets(row.response_times, self.bounds_ms)
            duration.add_metric(values, list(zip(self.les, counts, strict=True)), row.duration_sum_ms / 1000)
        errors = CounterMetricFamily(
            "locust_errors", "Failures by normalised error text", labels=["run_id", "method", "name", "error"]
        )
        for (method, name, text), count in fold_errors(
            stats.errors.values(), self.names, self.errors
        ).items():
            errors.add_metric([run_id, method, name, text], count)
        folded = CounterMetricFamily(
            "locust_exporter_folded",
            'Distinct names or error texts exported as "other"',
            labels=["run_id", "kind"],
        )
        folded.add_metric([run_id, "name"], len(self.names.folded))
        folded.add_metric([run_id, "error"], len(self.errors.folded))
        yield from (requests, failures, duration, size, errors, folded)

    def runner_metrics(self, run_id: str, runner) -> Iterator:
        from locust.runners import MasterRunner

        is_master = isinstance(runner, MasterRunner)
        users = GaugeMetricFamily("locust_users", "Users running", labels=["run_id", "user_class"])
        counts = dict.fromkeys((c.__name__ for c in runner.user_classes), 0)
        counts.update(runner.reported_user_classes_count if is_master else runner.user_classes_count)
        for user_class, count in sorted(counts.items()):
            users.add_metric([run_id, user_class], count)
        state = GaugeMetricFamily(
            "locust_runner_state", "1 for the runner's current state", labels=["run_id", "state"]
        )
        for name in RUNNER_STATES:
            state.add_metric([run_id, name], 1 if runner.state == name else 0)
        yield from (users, state)
        if is_master:
            yield from worker_metrics(run_id, runner)

    def run_metrics(self, run) -> Iterator:
        info = GaugeMetricFamily("locust_run_info", "The current run", labels=["run_id", "scenario", "host"])
        info.add_metric([run.run_id, run.scenario, run.host], 1)
        start = GaugeMetricFamily(
            "locust_run_start_timestamp_seconds", "Start of the current run", labels=["run_id"]
        )
        start.add_metric([run.run_id], run.started_at)
        yield from (info, start)
        if run.stage is not None:
            stage = GaugeMetricFamily(
                "locust_shape_stage", "The load shape's current stage", labels=["run_id", "stage"]
            )
            stage.add_metric([run.run_id, run.stage], 1)
            yield stage
        if run.slo_verdicts:
            slo = GaugeMetricFamily(
                "locust_slo_pass", "1 if the objective passed, 0 if not", labels=["run_id", "objective"]
            )
            for verdict in run.slo_verdicts:
                slo.add_metric([run.run_id, verdict.objective], 1 if verdict.passed else 0)
            yield slo
        for key, help_text in (
            ("users", "Highest user count that met the objectives"),
            ("requests_per_second", "Throughput at that user count"),
        ):
            capacity = run.capacity or {}
            found = capacity.get(key)
            if found is None and capacity.get("reason"):
                found = 0
            if found is not None:
                gauge = GaugeMetricFamily(f"locust_capacity_{key}", help_text, labels=["run_id"])
                gauge.add_metric([run.run_id], found)
                yield gauge


def reference_exposition(collector: ReferenceCollector) -> str:
    """What /metrics served for the Locust families: generate_latest over the collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()
