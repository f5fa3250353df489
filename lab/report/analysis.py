"""Pure computations behind `lab report` and `lab compare`: no I/O, unit-tested on fixed data.

Percentiles are estimated from cumulative histogram buckets the way Prometheus's
`histogram_quantile` does it (linear interpolation inside the bucket that holds the rank), so a
figure in the report matches what the same PromQL would show in Grafana.
"""

import math
import statistics
from collections.abc import Iterable, Mapping

from lab.core import slo
from lab.core.capacity import is_knee

INF = math.inf


def parse_le(text: str) -> float:
    return INF if text in ("+Inf", "Inf", "inf") else float(text)


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The q-quantile of cumulative buckets {upper bound: count}; None without observations.

    Follows Prometheus: buckets sorted by bound, counts forced monotonic, the +Inf bucket holds the
    total; a rank in the +Inf bucket returns the highest finite bound; the first bucket starts at 0.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside [0, 1]")
    bounds = sorted(buckets)
    if len(bounds) < 2 or bounds[-1] != INF:
        return None
    counts = []
    for bound in bounds:  # counts are sampled at slightly different times: never let them go down
        counts.append(max(buckets[bound], counts[-1] if counts else 0.0))
    total = counts[-1]
    if total <= 0 or math.isnan(total):
        return None
    rank = q * total
    index = next(i for i, count in enumerate(counts) if count >= rank)
    if index == len(bounds) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    lower, below = (bounds[index - 1], counts[index - 1]) if index > 0 else (0.0, 0.0)
    in_bucket = counts[index] - below
    if in_bucket == 0:
        return bounds[index]
    # Interpolated down from the bucket's upper bound and kept within the bucket: a rank at either edge
    # gives exactly that edge, never a float a hair outside it (which would read as the next bucket).
    return max(lower, bounds[index] - (bounds[index] - lower) * (counts[index] - rank) / in_bucket)


def bucket_bounds(value: float, bounds: Iterable[float]) -> tuple[float, float]:
    """The (lower, upper] bucket that holds `value`: how precise a histogram percentile can be."""
    lower = 0.0
    for bound in sorted(bounds):
        if value <= bound:
            return lower, bound
        lower = bound
    return lower, INF


def group_buckets(result: list[dict], by: tuple[str, ...] = ()) -> dict[tuple, dict[float, float]]:
    """Group a Prometheus vector of `_bucket` samples into {label values of `by`: {le: count}}."""
    grouped: dict[tuple, dict[float, float]] = {}
    for sample in result:
        key = tuple(sample["metric"].get(label, "") for label in by)
        grouped.setdefault(key, {})[parse_le(sample["metric"]["le"])] = float(sample["value"][1])
    return grouped


def bucket_series_quantiles(
    result: list[dict], quantiles: Iterable[float], seconds_per_unit: float = 1.0
) -> dict[float, list]:
    """Per timestamp quantiles from a Prometheus matrix of bucket rates `sum by (le) (rate(..._bucket))`,
    in seconds (`seconds_per_unit`: the histogram's unit, e.g. 0.001 for milliseconds).

    Returns {q: [(t, value or None), ...]} with the timestamps sorted.
    """
    at: dict[float, dict[float, float]] = {}
    for series in result:
        le = parse_le(series["metric"]["le"]) * seconds_per_unit
        for t, value in series["values"]:
            at.setdefault(float(t), {})[le] = float(value)
    times = sorted(at)
    return {q: [(t, histogram_quantile(q, at[t])) for t in times] for q in quantiles}


def drift(points: Iterable[tuple[float, float | None]], start: float, end: float) -> dict | None:
    """How much a series grows per hour over [start, end], robust to steps and outliers: the median of
    its last third minus the median of its middle third, over the time between their median times. Warm-up
    steps (pools, caches, allocator arenas) inside the first two thirds leave no drift; a series that
    keeps growing drifts at its rate. The first third is left out: it holds the warm-up.

    Returns {"per_hour", "middle": [from, to, median], "last": [from, to, median], "plateau"}, the
    plateau being {"level", "since"} when the series settled at least half a third before its last third
    and stayed within the last third's range since; None when a third has fewer than two values
    (missing values are skipped).
    """
    third = (end - start) / 3.0
    clean = sorted((t, v) for t, v in points if v is not None and not math.isnan(v) and start <= t <= end)
    middle = [(t, v) for t, v in clean if start + third <= t < start + 2 * third]
    last = [(t, v) for t, v in clean if t >= start + 2 * third]
    if third <= 0 or len(middle) < 2 or len(last) < 2:
        return None
    mid_level, last_level = (statistics.median(v for _, v in part) for part in (middle, last))
    elapsed = statistics.median(t for t, _ in last) - statistics.median(t for t, _ in middle)
    low, high = min(v for _, v in last), max(v for _, v in last)
    since = None
    for t, v in reversed(clean):  # back from the end while the values stay in the last third's range
        if not low <= v <= high:
            break
        since = t
    return {
        "per_hour": (last_level - mid_level) / elapsed * 3600.0,
        "middle": [start + third, start + 2 * third, mid_level],
        "last": [start + 2 * third, end, last_level],
        "plateau": {"level": last_level, "since": since} if since <= start + 1.5 * third else None,
    }


def steady_window(users: list[tuple[float, float]]) -> tuple[float, float] | None:
    """The part of a run held at its peak user count: from reaching the peak to leaving it."""
    if not users:
        return None
    peak = max(v for _, v in users)
    if peak <= 0:
        return None
    at_peak = [t for t, v in users if v >= peak]
    return at_peak[0], at_peak[-1]


def value_at(points: list[tuple[float, float]], t: float) -> float:
    """A counter's value at time t: its last sample at or before t, 0 before the first one."""
    before = [v for at, v in points if at <= t]
    return before[-1] if before else 0.0


def window_histogram(result: list[dict], start: float, end: float) -> dict[float, float]:
    """Bucket counts observed in [start, end] from a matrix of cumulative `sum by (le) (..._bucket)`."""
    histogram = {}
    for series in result:
        points = [(float(t), float(v)) for t, v in series["values"]]
        histogram[parse_le(series["metric"]["le"])] = value_at(points, end) - value_at(points, start)
    return histogram


def intervals(start: float, end: float, step: float) -> list[tuple[float, float]]:
    """Consecutive (from, to) intervals of `step` seconds from `start`, on the grid of a Prometheus range
    query with that start and step; a last partial interval before `end` is left out."""
    edges = [start + k * step for k in range(int((end - start) // step) + 1)]
    return list(zip(edges, edges[1:], strict=False))


def counter_rates(
    points: list[tuple[float, float]], spans: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Per-second increase of a counter over each (from, to) span, placed at `to`: exact differences of
    the counter's samples, so a run's first seconds are not underestimated the way rate() extrapolates."""
    return [(to, (value_at(points, to) - value_at(points, since)) / (to - since)) for since, to in spans]


def window_quantiles(
    result: list[dict], spans: list[tuple[float, float]], quantiles: Iterable[float]
) -> dict:
    """{q: [(to, quantile or None), ...]} over each span, from a matrix of cumulative bucket counts."""
    histograms = [(to, window_histogram(result, since, to)) for since, to in spans]
    return {q: [(to, histogram_quantile(q, h)) for to, h in histograms] for q in quantiles}


def find_knee(steps: list[Mapping], min_growth: float) -> int | None:
    """Index of the knee: the last step before the first one that meets the capacity search's knee
    rule (lab.core.capacity.is_knee). None while throughput still scales."""
    ordered = sorted(range(len(steps)), key=lambda i: steps[i]["users"])
    for here, after in zip(ordered, ordered[1:], strict=False):
        a, b = steps[here], steps[after]
        if is_knee(a["users"], a["requests_per_second"], b["users"], b["requests_per_second"], min_growth):
            return here
    return None


def compare_figures(
    before: Mapping,
    after: Mapping,
    threshold: float = 0.2,
    error_threshold: float = 0.01,
    min_latency_delta: float = 0.01,
) -> list[dict]:
    """Changes from `before` to `after`, one row per metric of each endpoint, flagged if a regression.

    `before`/`after` map an endpoint key ("overall", "GET /items", ...) to figures with
    requests_per_second, p95_seconds, p99_seconds and error_ratio, and an open-model run's overall
    dropped_ratio. A regression is requests/s down by more than `threshold` (relative), p95 or p99 up
    by more than `threshold` and by at least `min_latency_delta` seconds (so sub-bucket noise at low
    latency never gates), or the error or dropped ratio up by more than `error_threshold` (absolute: a
    relative change from 0 means nothing).
    """
    rows = []
    for endpoint in sorted(set(before) | set(after), key=lambda e: (e != "overall", e)):
        a, b = before.get(endpoint), after.get(endpoint)
        dropped = ("dropped_ratio",) if "dropped_ratio" in (a or {}) or "dropped_ratio" in (b or {}) else ()
        for metric in ("requests_per_second", "p95_seconds", "p99_seconds", "error_ratio", *dropped):
            old = a.get(metric) if a else None
            new = b.get(metric) if b else None
            row = {"endpoint": endpoint, "metric": metric, "before": old, "after": new}
            row["change"] = None if old is None or new is None else new - old
            row["relative_change"] = (new - old) / old if row["change"] is not None and old else None
            row["regression"] = _is_regression(
                metric, old, new, threshold, error_threshold, min_latency_delta
            )
            rows.append(row)
    return rows


def _is_regression(metric, old, new, threshold, error_threshold, min_latency_delta) -> bool:
    if old is None or new is None:
        return False  # an endpoint only one run has: shown, not judged
    if metric == "requests_per_second":
        return old > 0 and (old - new) / old > threshold
    if metric in slo.RATIOS:
        return new - old > error_threshold
    return new - old >= min_latency_delta and (old == 0 or (new - old) / old > threshold)
