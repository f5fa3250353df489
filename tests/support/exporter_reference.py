"""The exporter as it rendered /metrics before the cached exposition: the reference of the golden test
(tests/unit/test_exporter_golden.py) and the "old" column of bench/exporter.py.

Every request family is rebuilt at each scrape (each folded row's response times merged, then
bucketed) and rendered by prometheus_client's `generate_latest`. Everything else (folding, error
normalisation, the families other than the four request families) is the exporter's
own, so that what differs is only how the request families are built and rendered.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from lab.plugin.exporter import Folder, LocustCollector


def cumulative_buckets(response_times: dict[int, int], bounds_ms: list[float]) -> list[int]:
    per_bucket = [0] * (len(bounds_ms) + 1)
    for value, count in response_times.items():
        per_bucket[bisect.bisect_left(bounds_ms, value)] += count
    cumulative, running = [], 0
    for count in per_bucket:
        running += count
        cumulative.append(running)
    return cumulative


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


class ReferenceCollector(LocustCollector):
    """LocustCollector as it was: the request families rebuilt at every scrape from merged response
    times; the other families (errors, folding, runner, workers, run) are today's, unchanged."""

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
        yield from self.other_families((runner, run, None))

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
        yield from (requests, failures, duration, size)


def reference_exposition(collector: ReferenceCollector) -> str:
    """What /metrics served for the Locust families: generate_latest over the collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()
