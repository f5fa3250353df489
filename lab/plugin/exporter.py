"""Locust -> Prometheus: the master's aggregated stats, read at scrape time.

A custom Collector turns the master's (or local runner's) merged stats into Prometheus series on its
own port (default 9646), headless or with the web UI. Nothing runs on a worker and nothing is added
per request: each scrape reads what Locust already keeps.

The request-duration histogram is built from StatsEntry.response_times, Locust's distribution of
response times rounded by `locust.stats.bucket_response_time` (whole ms below 100 ms, then two
significant digits: tens below 1 s, hundreds below 10 s, thousands above). Bucket boundaries must be
values that rounding keeps as they are, so each bucket counts exactly the samples Locust counts
at or below it and `histogram_quantile` agrees with Locust's own percentiles to within a bucket.

Every series carries the run's id (lab.plugin.runs); a new run or a stats reset during a test gives new
series, and the old ones leave /metrics at once. An ended run's request series are its frozen final
figures until the next run starts: its counters never go down. Names and error texts beyond a bound
fold into "other".

A scrape must stay cheap with hundreds of names (~25 series a name): the request families are kept
between scrapes as rows of rendered text, and a row is redone only when its Locust entries changed;
/metrics writes them in the text format directly, and the few other families through prometheus_client's
generate_latest (bench/exporter.py; tests/unit/test_exporter_golden.py holds the samples to what
generate_latest gives for every family).
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import logging
import re
import socket
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

from locust import stats
from locust.runners import LocalRunner, MasterRunner
from locust.stats import StatsError
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, ThreadingWSGIServer
from prometheus_client.utils import floatToGoString

from lab.plugin.arrivals import offered_rate, totals_of
from lab.plugin.runs import current, worker_label

logger = logging.getLogger(__name__)

DEFAULT_PORT = 9646
DEFAULT_MAX_NAMES = 200
DEFAULT_MAX_ERRORS = 100
# Seconds. The SLO thresholds of the metric contract (0.005 ... 10) and a few steps between them;
# each is a value Locust's response-time rounding leaves unchanged. Every boundary costs one series
# a name: with 19, a 200-name scrape costs ~7 ms of master CPU when every name changed (bench/exporter.py).
DEFAULT_BUCKETS = (
    0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.15,
    0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
OTHER = "other"
ERROR_TEXT_MAX = 120
RUNNER_STATES = ("ready", "spawning", "running", "cleanup", "stopping", "stopped")
WORKER_STATES = ("ready", "spawning", "running", "missing", "stopped")


# --- options -------------------------------------------------------------------------------------


def rounding_keeps(ms: float) -> bool:
    """True when Locust's response-time rounding maps `ms` to itself."""
    return float(ms).is_integer() and stats.bucket_response_time(int(ms)) == int(ms)


def parse_buckets(text: str) -> tuple[float, ...]:
    """Comma-separated bucket boundaries in seconds, increasing, each kept exact by Locust's rounding."""
    try:
        bounds = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of seconds; use e.g. 0.05,0.1,0.25,0.5,1"
        ) from None
    if not bounds or any(b <= 0 for b in bounds) or list(bounds) != sorted(set(bounds)):
        raise argparse.ArgumentTypeError(f"{text!r}: boundaries must be positive and strictly increasing")
    for b in bounds:
        ms = round(b * 1000, 6)
        if not rounding_keeps(ms):
            raise argparse.ArgumentTypeError(
                f"bucket {b:g}s: Locust rounds response times so that {ms:g} ms is never a value; "
                "use whole ms below 0.1s, multiples of 10 ms below 1s, of 100 ms below 10s, of 1s above"
            )
    return bounds


def whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def add_arguments(parser) -> None:
    parser.add_argument(
        "--exporter-port",
        type=whole_number,
        default=DEFAULT_PORT,
        env_var="LOCUST_EXPORTER_PORT",
        include_in_web_ui=False,
        help=f"Port of the Prometheus exporter on the master (default {DEFAULT_PORT}; 0 disables it)",
    )
    parser.add_argument(
        "--exporter-host",
        default="0.0.0.0",
        env_var="LOCUST_EXPORTER_HOST",
        include_in_web_ui=False,
        help="Address the exporter listens on (default all interfaces)",
    )
    parser.add_argument(
        "--exporter-max-names",
        type=whole_number,
        default=DEFAULT_MAX_NAMES,
        env_var="LOCUST_EXPORTER_MAX_NAMES",
        include_in_web_ui=False,
        help=f'Distinct request names exported before further ones fold into name="{OTHER}"',
    )
    parser.add_argument(
        "--exporter-max-errors",
        type=whole_number,
        default=DEFAULT_MAX_ERRORS,
        env_var="LOCUST_EXPORTER_MAX_ERRORS",
        include_in_web_ui=False,
        help=f'Distinct error texts exported before further ones fold into error="{OTHER}"',
    )
    parser.add_argument(
        "--exporter-buckets",
        type=parse_buckets,
        default=DEFAULT_BUCKETS,
        env_var="LOCUST_EXPORTER_BUCKETS",
        include_in_web_ui=False,
        help="Request duration histogram boundaries in seconds, comma-separated",
    )


# --- pure conversion -----------------------------------------------------------------------------


class Buckets:
    """Cumulative bucket counts of one Locust response_times dict, kept up to date as it grows.

    Locust only ever adds keys to a response_times dict (a reset replaces the dict), and a dict keeps
    keys in insertion order: each key is placed in its bucket once, when it first appears, and a count
    is then a C-speed sum over the bucket's keys instead of a Python loop over every key.
    """

    __slots__ = ("bounds_ms", "response_times", "seen", "keys")

    def __init__(self, bounds_ms: list[float]) -> None:
        self.bounds_ms = bounds_ms
        self.response_times: dict[int, int] | None = None
        self.seen = 0
        self.keys: dict[int, list[int]] = {}  # bucket index -> its keys, for the buckets that have any

    def counts(self, response_times: dict[int, int]) -> list[int]:
        """Counts of samples at or below each boundary (ms), then the total (the +Inf bucket)."""
        if response_times is not self.response_times or len(response_times) < self.seen:
            self.response_times, self.seen, self.keys = response_times, 0, {}
        if len(response_times) > self.seen:
            for value in itertools.islice(response_times, self.seen, None):
                self.keys.setdefault(bisect.bisect_left(self.bounds_ms, value), []).append(value)
            self.seen = len(response_times)
        count = response_times.__getitem__
        per_bucket = [0] * (len(self.bounds_ms) + 1)
        for index, keys in self.keys.items():
            per_bucket[index] = sum(map(count, keys))
        return list(itertools.accumulate(per_bucket))


def cumulative_buckets(response_times: dict[int, int], bounds_ms: Iterable[float]) -> list[int]:
    """Counts of samples at or below each boundary (ms), then the total (the +Inf bucket)."""
    return Buckets(list(bounds_ms)).counts(response_times)


_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>)]+")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b")
_ADDRESS = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|\[[0-9a-fA-F:]+\](?::\d+)?")
# Numbers, except an HTTP status: requests' "500 Server Error", FastHttpUser's "code=500", "status 503".
_NUMBER = re.compile(
    r"(?<![\d.])(?P<status>(?:(?<=code=)|(?<=code )|(?<=status=)|(?<=status )|(?<=status_code=))[1-5]\d\d"
    r"|[1-5]\d\d(?= (?:Client|Server) Error))(?![\d.])"
    r"|(?<![A-Za-z\d])\d+(?:\.\d+)?(?!\d)"
)
_SPACE = re.compile(r"\s+")


def normalise_error(text: str, limit: int = ERROR_TEXT_MAX) -> str:
    """An error text with the parts that vary per request (ids, numbers, addresses) replaced."""
    if text.startswith("CatchResponseError(") and text.endswith(")"):
        text = text[len("CatchResponseError(") : -1]
    text = _UUID.sub("<uuid>", text)
    text = _URL.sub("<url>", text)
    text = _ADDRESS.sub("<addr>", text)
    text = _HEX.sub("<hex>", text)
    text = _NUMBER.sub(lambda m: m.group("status") or "<n>", text)
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Folder:
    """Admits the first `limit` distinct values of a run, maps later ones to "other", counts them."""

    def __init__(self, kind: str, limit: int) -> None:
        self.kind = kind
        self.limit = limit
        self.admitted: set[str] = set()
        self.folded: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.admitted:
            return value
        if value not in self.folded and len(self.admitted) < self.limit:
            self.admitted.add(value)
            return value
        if not self.folded:
            logger.warning(
                "lab exporter: more than %d distinct %s values; further ones are exported as %s=%r "
                "(raise --exporter-max-%ss to keep more)",
                self.limit,
                self.kind,
                self.kind,
                OTHER,
                self.kind,
            )
        self.folded.add(value)
        return OTHER


class Series:
    """One (method, name) row after folding: the Locust entries that add into it (several once folded)."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list = []

    def add(self, entry) -> None:
        self.entries.append(entry)

    @property
    def requests(self) -> int:
        return sum(e.num_requests for e in self.entries)

    @property
    def failures(self) -> int:
        return sum(e.num_failures for e in self.entries)

    @property
    def content_length(self) -> int:
        return sum(e.total_content_length for e in self.entries)

    @property
    def duration_sum_ms(self) -> float:
        return sum(e.total_response_time for e in self.entries)

    @property
    def response_times(self) -> dict[int, int]:
        merged: dict[int, int] = defaultdict(int)
        for entry in self.entries:
            for value, count in entry.response_times.items():
                merged[value] += count
        return merged


def fold_entries(entries: Iterable, names: Folder) -> dict[tuple[str, str], Series]:
    """Locust StatsEntry objects keyed (method, name), with names past the bound folded together.

    Names are admitted in sorted order within a scrape, so which ones fold does not depend on dict order.
    """
    rows: dict[tuple[str, str], Series] = {}
    for entry in sorted(entries, key=lambda e: (e.name, e.method or "")):
        key = (entry.method or "", names(entry.name))
        rows.setdefault(key, Series()).add(entry)
    return rows


def fold_errors(errors: Iterable, names: Folder, texts: Folder) -> dict[tuple[str, str, str], int]:
    """Locust StatsError objects summed by (method, name, normalised error text), both folded."""
    rows: dict[tuple[str, str, str], int] = defaultdict(int)
    keyed = [(e.method or "", e.name, normalise_error(StatsError.parse_error(e.error)), e) for e in errors]
    for method, name, text, error in sorted(keyed, key=lambda k: k[:3]):
        rows[(method, names(name), texts(text))] += error.occurrences
    return rows


# --- the request families, kept rendered between scrapes ----------------------------------------

REQUESTS = ("locust_requests", "Requests completed")
FAILURES = ("locust_request_failures", "Requests failed")
DURATION = ("locust_request_duration_seconds", "Response time (Locust's rounded distribution)")
SIZE = ("locust_response_size_bytes", "Response bytes received")
# The open model's second clock (lab.plugin.arrivals): from the arrival's due time, not the request's start.
INTENDED = (
    "locust_request_intended_duration_seconds",
    "Response time from the intended start: plus the arrival's wait for a free user (open model)",
)
INTENDED_HEADER = f"# HELP {INTENDED[0]} {INTENDED[1]}\n# TYPE {INTENDED[0]} histogram\n".encode()


# The four families' HELP and TYPE lines, in the order of Row.lines.
REQUEST_HEADERS = tuple(
    f"# HELP {name}{suffix} {help_text}\n# TYPE {name}{suffix} {kind}\n".encode()
    for (name, help_text), suffix, kind in (
        (REQUESTS, "_total", "counter"),
        (FAILURES, "_total", "counter"),
        (DURATION, "", "histogram"),
        (SIZE, "_total", "counter"),
    )
)


def label_value(text: str) -> str:
    """A label value as the text exposition format writes it between quotes."""
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def entry_signature(entry) -> tuple:
    """Changes whenever Locust adds to an entry or resets it (a reset entry holds a new response_times)."""
    return (
        entry,
        entry.num_requests,
        entry.num_failures,
        entry.total_content_length,
        entry.total_response_time,
        entry.response_times,  # a tuple compares it by identity first: the same dict costs nothing
    )


class Row:
    """One folded (method, name) row: its figures, and its lines of the four request families."""

    __slots__ = ("requests", "failures", "content_length", "duration_sum_ms", "cumulative", "lines")

    def __init__(self, series: Series, cumulative: list[int], heads: tuple[str, ...]) -> None:
        self.requests = series.requests
        self.failures = series.failures
        self.content_length = series.content_length
        self.duration_sum_ms = series.duration_sum_ms
        self.cumulative = cumulative
        # Counts are whole numbers: written as integers, they parse to the same samples as "5.0".
        requests_at, failures_at, size_at, count_at, sum_at, *buckets_at = heads
        self.lines = (  # encoded once here, so that a scrape only joins bytes
            f"{requests_at}{self.requests}\n".encode(),
            f"{failures_at}{self.failures}\n".encode(),
            (
                "".join([f"{head}{n}\n" for head, n in zip(buckets_at, cumulative, strict=True)])
                + f"{count_at}{cumulative[-1]}\n{sum_at}{floatToGoString(self.duration_sum_ms / 1000)}\n"
            ).encode(),
            f"{size_at}{self.content_length}\n".encode(),
        )


def stats_of(runner, run):
    """The stats to export: an ended run's frozen figures (its counters stay at their final values,
    whatever happens to the live stats, e.g. a reset), else the runner's live stats."""
    return run.figures.stats if run is not None and run.figures is not None else runner.stats


def arrivals_of(environment, run):
    """The arrival totals to export: an ended run's frozen ones (as stats_of), else the live ones; None
    where there are none."""
    return run.figures.arrivals if run is not None and run.figures is not None else totals_of(environment)


class RequestTable:
    """The request rows of one run; a scrape rebuilds only the rows whose Locust entries changed.

    Each scrape reads a few counters of every entry; bucket counts (per entry) and text (per row) are
    redone only where they moved, so a name that saw no request since the last scrape costs almost nothing.
    """

    def __init__(
        self, run_id: str, bounds_ms: list[float], les: list[str], duration: str = DURATION[0]
    ) -> None:
        self.run_id = label_value(run_id)
        self.duration = duration  # the histogram's name: Locust's response time, or the intended-start clock
        self.bounds_ms = bounds_ms
        self.les = les
        self.rows: dict[tuple[str, str], tuple[tuple, Row]] = {}
        self.heads: dict[tuple[str, str], tuple[str, ...]] = {}  # a row's line starts, up to the value
        self.buckets: dict = {}  # Locust entry -> its Buckets

    def update(self, folded: dict[tuple[str, str], Series]) -> list[tuple[tuple[str, str], Row]]:
        rows, buckets, out = {}, {}, []
        for key, series in folded.items():
            signature = tuple(entry_signature(e) for e in series.entries)
            cached = self.rows.get(key)
            if cached is None or cached[0] != signature:
                cached = (signature, self.build(key, series))
            for entry in series.entries:
                buckets[entry] = self.buckets[entry]
            rows[key] = cached
            out.append((key, cached[1]))
        self.rows, self.buckets = rows, buckets
        return out

    def build(self, key: tuple[str, str], series: Series) -> Row:
        total: list[int] | None = None
        for entry in series.entries:
            counter = self.buckets.get(entry)
            if counter is None:
                counter = self.buckets[entry] = Buckets(self.bounds_ms)
            counts = counter.counts(entry.response_times)
            total = counts if total is None else [a + b for a, b in zip(total, counts, strict=True)]
        heads = self.heads.get(key)
        if heads is None:
            heads = self.heads[key] = self.line_heads(key)
        return Row(series, total, heads)

    def line_heads(self, key: tuple[str, str]) -> tuple[str, ...]:
        """requests, failures, size, count, sum, then one per bucket; labels sorted as generate_latest does."""
        method, name = key
        labels = f'method="{label_value(method)}",name="{label_value(name)}",run_id="{self.run_id}"'
        return (
            f"{REQUESTS[0]}_total{{{labels}}} ",
            f"{FAILURES[0]}_total{{{labels}}} ",
            f"{SIZE[0]}_total{{{labels}}} ",
            f"{self.duration}_count{{{labels}}} ",
            f"{self.duration}_sum{{{labels}}} ",
            *(f'{self.duration}_bucket{{le="{le}",{labels}}} ' for le in self.les),
        )


class Families:
    """Metric families already built, in the shape generate_latest reads (a collector's collect())."""

    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self) -> list:
        return self.families


class LocustCollector:
    """Reads the runner's stats and the current lab run at every scrape.

    `collect()` gives every family to a prometheus_client registry; `exposition()` is what /metrics
    serves: the same samples, with the request families written from the rows kept between scrapes
    instead of through generate_latest (which costs microseconds a sample, and there are ~25 a name).
    """

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
        self.table = RequestTable("", self.bounds_ms, self.les)
        self.intended_table = RequestTable("", self.bounds_ms, self.les, INTENDED[0])
        self.lateness_buckets = Buckets(self.bounds_ms)
        self.lock = threading.Lock()  # scrapes may come in on several server threads at once

    def describe(self) -> list:
        return []  # the series depend on the run: nothing to check at registration

    def collect(self) -> Iterator:
        with self.lock:
            scrape = self.read()
            if scrape is None:
                return
            families = [*self.request_families(scrape), *self.other_families(scrape)]
        yield from families

    def exposition(self) -> bytes:
        """The Locust families in the Prometheus text format (version 0.0.4), UTF-8."""
        with self.lock:
            scrape = self.read()
            if scrape is None:
                return b""
            _runner, _run, rows, intended = scrape
            parts = []
            for i, header in enumerate(REQUEST_HEADERS):
                parts.append(header)
                parts += [row.lines[i] for _key, row in rows]
            if intended:
                parts.append(INTENDED_HEADER)
                parts += [row.lines[2] for _key, row in intended]  # only the histogram of those rows
            others = list(self.other_families(scrape))
        parts.append(generate_latest(Families(others)))
        return b"".join(parts)

    def read(self) -> tuple | None:
        """(runner, run, request rows, intended-start rows) of this scrape; None before there is a runner."""
        runner = self.environment.runner
        if runner is None:
            return None
        run = current(self.environment)
        run_id = run.run_id if run else ""
        if run_id != self.folding_run:  # each run starts with empty folding state and new series
            self.folding_run = run_id
            self.names = Folder("name", self.max_names)
            self.errors = Folder("error", self.max_errors)
            self.table = RequestTable(run_id, self.bounds_ms, self.les)
            self.intended_table = RequestTable(run_id, self.bounds_ms, self.les, INTENDED[0])
        rows = self.table.update(fold_entries(stats_of(runner, run).entries.values(), self.names))
        totals = arrivals_of(self.environment, run)
        # Its names are request names too, admitted above: they fold the same way.
        entries = [e for e in totals.intended.entries.values() if e.num_requests] if totals else []
        return runner, run, rows, self.intended_table.update(fold_entries(entries, self.names))

    def request_families(self, scrape: tuple) -> Iterator:
        _runner, run, rows, intended_rows = scrape
        run_id = run.run_id if run else ""
        labels = ["run_id", "method", "name"]
        requests = CounterMetricFamily(*REQUESTS, labels=labels)
        failures = CounterMetricFamily(*FAILURES, labels=labels)
        duration = HistogramMetricFamily(*DURATION, labels=labels)
        size = CounterMetricFamily(*SIZE, labels=labels)
        for (method, name), row in rows:
            values = [run_id, method, name]
            requests.add_metric(values, row.requests)
            failures.add_metric(values, row.failures)
            duration.add_metric(
                values, list(zip(self.les, row.cumulative, strict=True)), row.duration_sum_ms / 1000
            )
            size.add_metric(values, row.content_length)
        yield from (requests, failures, duration, size)
        if intended_rows:
            intended = HistogramMetricFamily(*INTENDED, labels=labels)
            for (method, name), row in intended_rows:
                intended.add_metric(
                    [run_id, method, name],
                    list(zip(self.les, row.cumulative, strict=True)),
                    row.duration_sum_ms / 1000,
                )
            yield intended

    def other_families(self, scrape: tuple) -> Iterator:
        """Errors, folding, runner, workers and run: a few series whatever the number of names."""
        runner, run = scrape[:2]
        run_id = run.run_id if run else ""
        errors = CounterMetricFamily(
            "locust_errors", "Failures by normalised error text", labels=["run_id", "method", "name", "error"]
        )
        for (method, name, text), count in fold_errors(
            stats_of(runner, run).errors.values(), self.names, self.errors
        ).items():
            errors.add_metric([run_id, method, name, text], count)
        folded = CounterMetricFamily(
            "locust_exporter_folded",
            'Distinct names or error texts exported as "other"',
            labels=["run_id", "kind"],
        )
        folded.add_metric([run_id, "name"], len(self.names.folded))
        folded.add_metric([run_id, "error"], len(self.errors.folded))
        yield from (errors, folded)
        yield from self.runner_metrics(run_id, runner)
        yield from self.arrival_metrics(run_id, arrivals_of(self.environment, run))
        if run is not None:
            yield from self.run_metrics(run)

    def runner_metrics(self, run_id: str, runner) -> Iterator:
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

    def arrival_metrics(self, run_id: str, totals) -> Iterator:
        """The open model's arrivals (lab.plugin.arrivals), once a test has offered any."""
        offered = offered_rate(self.environment)  # 0 once the test stopped
        if totals is None or not (totals.arrivals or offered):
            return
        rate = GaugeMetricFamily(
            "locust_arrival_rate", "Target arrivals per second (offered)", labels=["run_id"]
        )
        rate.add_metric([run_id], offered)
        arrivals = CounterMetricFamily(
            "locust_arrivals", "Arrivals due (task executions offered)", labels=["run_id"]
        )
        arrivals.add_metric([run_id], totals.arrivals)
        dropped = CounterMetricFamily(
            "locust_arrivals_dropped", "Arrivals that found no free user within max_delay", labels=["run_id"]
        )
        dropped.add_metric([run_id], totals.dropped)
        lateness = HistogramMetricFamily(
            "locust_arrival_lateness_seconds", "Wait of a started arrival for a free user", labels=["run_id"]
        )
        entry = totals.lateness
        cumulative = self.lateness_buckets.counts(entry.response_times)
        lateness.add_metric(
            [run_id], list(zip(self.les, cumulative, strict=True)), entry.total_response_time / 1000
        )
        yield from (rate, arrivals, dropped, lateness)

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
                found = 0  # the search has ended and no step met the objectives: a capacity of zero
            if found is not None:  # still None: no step has met the objectives yet, the search goes on
                gauge = GaugeMetricFamily(f"locust_capacity_{key}", help_text, labels=["run_id"])
                gauge.add_metric([run.run_id], found)
                yield gauge


def worker_labels(client_ids: Iterable[str], index_of) -> dict[str, str]:
    """Worker label per client id: its host name, or `host/index` where several share one host."""
    hosts = {client_id: worker_label(client_id) for client_id in client_ids}
    shared = {h for h, n in Counter(hosts.values()).items() if n > 1}
    return {cid: f"{h}/{index_of(cid)}" if h in shared else h for cid, h in hosts.items()}


def worker_metrics(run_id: str, runner) -> Iterator:
    nodes = list(runner.clients.values())
    workers = GaugeMetricFamily("locust_workers", "Workers by state", labels=["run_id", "state"])
    for state in WORKER_STATES:
        workers.add_metric([run_id, state], sum(1 for n in nodes if n.state == state))
    # Per worker, with its machine as `host`, so that dashboards group workers by the machine they run on.
    per_worker = ["run_id", "worker", "host"]
    state = GaugeMetricFamily(
        "locust_worker_state", "1 for each worker's current state", labels=[*per_worker, "state"]
    )
    cpu = GaugeMetricFamily(
        "locust_worker_cpu_usage_ratio", "Worker CPU use (1 = one core)", labels=per_worker
    )
    labels = worker_labels((n.id for n in nodes), runner.get_worker_index)
    for node in nodes:
        values = [run_id, labels[node.id], worker_label(node.id)]
        state.add_metric([*values, node.state], 1)
        if node.state != "missing":  # its last report is stale
            cpu.add_metric(values, node.cpu_usage / 100)
    yield from (workers, state, cpu)


# --- plugin wiring -------------------------------------------------------------------------------


def metrics_app(collector: LocustCollector, registry):
    """The WSGI app of /metrics: the collector's exposition, then the registry's (the process metrics).

    Always the text format 0.0.4, uncompressed: Prometheus reads it whatever it asks for, and gzip would
    cost the master more CPU than the rest of a scrape.
    """

    def app(environ, start_response):
        if environ["REQUEST_METHOD"] != "GET":
            start_response("405 Method Not Allowed", [("Allow", "GET")])
            return [b""]
        body = [collector.exposition(), generate_latest(registry)]  # sent one after the other, not joined
        length = str(sum(map(len, body)))
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4), ("Content-Length", length)])
        return body

    return app


def start_server(environment, options):
    """Serve /metrics for this environment as `options` say; returns (server, thread) to shut down."""

    class Quiet(WSGIRequestHandler):
        def log_message(self, *_args) -> None:
            pass  # a line per scrape would drown the master's log

    class Server(ThreadingWSGIServer):
        address_family = socket.getaddrinfo(
            options.exporter_host, options.exporter_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0][0]

    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)  # the master's own memory and CPU, for soak drift
    collector = LocustCollector(
        environment, options.exporter_buckets, options.exporter_max_names, options.exporter_max_errors
    )
    app = metrics_app(collector, registry)
    server = make_server(options.exporter_host, options.exporter_port, app, Server, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def on_init(environment, runner=None, **_kw) -> None:
    options = environment.parsed_options
    if options is None or not isinstance(runner, MasterRunner | LocalRunner):
        return  # workers export nothing (the master has the merged stats); library use builds its own
    if not options.exporter_port:
        return
    try:
        server, _thread = start_server(environment, options)
    except OSError as exc:
        logger.error(
            "lab exporter: cannot listen on port %d (%s); pick another with --exporter-port",
            options.exporter_port,
            exc,
        )
        sys.exit(1)
    logger.info("lab exporter: serving /metrics on %s:%d", options.exporter_host, options.exporter_port)
    environment.events.quitting.add_listener(lambda **_: server.shutdown())


def register(events) -> None:
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(on_init)
