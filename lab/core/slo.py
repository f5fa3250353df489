"""Service level objectives as code: the SLO file's model and validation, and their judgement over
a window of Locust's stats (a whole run, or the steady part of one capacity step).

The file (`slo.yaml`):

    objectives:
      catalog-p95:                       # the objective's name: the `objective` label of locust_slo_pass
        metric: latency_p95              # latency_p50/p90/p95/p99, error_ratio, throughput or dropped_ratio
        requests: "GET /api/v1/items*"   # request names (glob, optionally "METHOD glob"); default all
        max: 300ms                       # latency: seconds or 250ms/1s; error_ratio: 0..1
        abort_after: 2m                  # optional: stop a running test breaching it this long
      throughput:
        metric: throughput
        min: 20                          # requests/s over the run
      arrivals:
        metric: dropped_ratio            # the open model (rate scenario): arrivals dropped / arrivals due
        max: 0                           # 0..1; `requests` does not apply: arrivals are not per request
    soak: {...}                          # drift limits read by `lab report` (see docs)
"""

import fnmatch
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from lab.core.yamlconf import ConfigError, LineDict, LineList, fail, located, parse_duration
from lab.core.yamlconf import load as load_yaml

DEFAULT_FILE = "slo.yaml"

QUANTILES = {"latency_p50": 0.5, "latency_p90": 0.9, "latency_p95": 0.95, "latency_p99": 0.99}
METRICS = (*QUANTILES, "error_ratio", "throughput", "dropped_ratio")
RATIOS = ("error_ratio", "dropped_ratio")
OBJECTIVE_KEYS = ("metric", "requests", "max", "min", "abort_after", "description")
SOAK_KEYS = (
    "max_p95_slope_seconds_per_hour",
    "max_error_ratio_slope_per_hour",
    "max_api_memory_slope_bytes_per_hour",
    "max_locust_memory_slope_bytes_per_hour",
)
UNITS = {
    "error_ratio": "ratio",
    "dropped_ratio": "ratio",
    "throughput": "requests/s",
    **dict.fromkeys(QUANTILES, "seconds"),
}


@dataclass(frozen=True)
class Objective:
    name: str
    metric: str
    requests: tuple[str, ...]  # patterns: "glob" on the request name, or "METHOD glob"
    bound: str  # "max" or "min"
    threshold: float  # base units: seconds, a ratio, requests per second
    line: int = 0
    abort_after: float | None = None  # seconds breached in a running test before it is stopped

    def matches(self, method: str, name: str) -> bool:
        for pattern in self.requests:
            want_method, _, glob = pattern.partition(" ") if " " in pattern else ("", "", pattern)
            method_ok = not want_method or fnmatch.fnmatchcase(method.upper(), want_method.upper())
            if method_ok and fnmatch.fnmatchcase(name, glob):
                return True
        return False


@dataclass
class Verdict:
    objective: str
    metric: str
    passed: bool | None  # None: no requests matched in the window, nothing to judge
    value: float | None
    threshold: float
    bound: str
    unit: str
    requests: int = 0

    def describe(self) -> str:
        if self.passed is None:
            return f"{self.objective}: no data (no matching requests)"
        sign = "<=" if self.bound == "max" else ">="
        outcome = "pass" if self.passed else "FAIL"
        return f"{self.objective}: {self.metric} {self.value:.4g} {sign} {self.threshold:g} {self.unit}: {outcome}"

    def to_dict(self) -> dict:
        return asdict(self)


def parse(data, source: str) -> list[Objective]:
    """Validate the SLO file's content; the first problem raises ConfigError naming line and key."""
    if not isinstance(data, LineDict):
        fail(source, 1, "expected a mapping with 'objectives'")
    for key in data:
        if key not in ("objectives", "soak"):
            fail(source, data.key_lines[key], f"unknown key {key!r} (expected 'objectives' and 'soak')")
    soak = data.get("soak")
    if soak is not None:
        if not isinstance(soak, LineDict):
            fail(source, data.key_lines["soak"], "'soak' must be a mapping of limit to number")
        for key, value in soak.items():
            if key not in SOAK_KEYS:
                fail(
                    source,
                    soak.key_lines[key],
                    f"soak: unknown key {key!r} (expected one of: {', '.join(SOAK_KEYS)})",
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                fail(source, soak.key_lines[key], f"soak: {key} must be a number of at least 0")
    objectives = data.get("objectives")
    if not isinstance(objectives, LineDict) or not objectives:
        fail(
            source, data.key_lines.get("objectives", 1), "'objectives' must map objective names to objectives"
        )
    result = []
    for name, body in objectives.items():
        line = objectives.key_lines[name]
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]+", name):
            fail(source, line, f"objective name {name!r}: use letters, digits, '_', '-', '.' or ':'")
        if not isinstance(body, LineDict):
            fail(source, line, f"objective {name!r} must be a mapping with 'metric' and 'max' or 'min'")
        result.append(_objective(name, body, source))
    return result


def _objective(name: str, body: LineDict, source: str) -> Objective:
    for key in body:
        if key not in OBJECTIVE_KEYS:
            expected = ", ".join(OBJECTIVE_KEYS)
            fail(
                source,
                body.key_lines[key],
                f"objective {name!r}: unknown key {key!r} (expected one of: {expected})",
            )
    metric = body.get("metric")
    if metric not in METRICS:
        line = body.key_lines.get("metric", body.line)
        fail(source, line, f"objective {name!r}: metric {metric!r} is not one of: {', '.join(METRICS)}")
    bound = "min" if metric == "throughput" else "max"
    other = "max" if bound == "min" else "min"
    if other in body:
        fail(source, body.key_lines[other], f"objective {name!r}: {metric} takes '{bound}', not '{other}'")
    if bound not in body:
        fail(source, body.line, f"objective {name!r}: missing '{bound}' (the threshold of {metric})")
    raw, line = body[bound], body.key_lines[bound]
    try:
        threshold = parse_duration(raw) if metric in QUANTILES else float(raw)
        if isinstance(raw, bool) or threshold < 0:
            raise ValueError
    except (TypeError, ValueError):
        kind = {
            "error_ratio": "a ratio between 0 and 1",
            "dropped_ratio": "a ratio between 0 and 1",
            "throughput": "requests per second",
        }
        fail(
            source,
            line,
            f"objective {name!r}: {bound} {raw!r} is not {kind.get(metric, 'a latency (e.g. 250ms)')}",
        )
    if metric in RATIOS and threshold > 1:
        fail(source, line, f"objective {name!r}: max {raw!r} is above 1 ({metric} is a ratio, 0.01 is 1%)")
    requests = body.get("requests", "*")
    patterns = list(requests) if isinstance(requests, LineList) else [requests]
    if not patterns or not all(isinstance(p, str) and p.strip() for p in patterns):
        fail(
            source,
            body.key_lines["requests"],
            f"objective {name!r}: requests must be a pattern or a list of them",
        )
    abort_after = None
    if "abort_after" in body:
        try:
            abort_after = parse_duration(body["abort_after"])
            if abort_after <= 0:
                raise ValueError
        except ValueError:
            fail(
                source,
                body.key_lines["abort_after"],
                f"objective {name!r}: abort_after {body['abort_after']!r} is not a duration above 0 (e.g. 90s, 2m)",
            )
    return Objective(
        name,
        metric,
        tuple(p.strip() for p in patterns),
        bound,
        threshold,
        body.key_lines.get("metric", 0),
        abort_after,
    )


def load(path) -> list[Objective]:
    return parse(load_yaml(path), str(path))


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of an SLO file: the objectives and the soak drift limits it sets."""

    objectives: list[Objective]
    soak: dict[str, float]  # only the keys the file sets (of SOAK_KEYS)


def load_thresholds(path) -> Thresholds:
    """The SLO file's thresholds, for the tools that show or alert on them (dashboards, alert rules,
    reports): locust/slo.yaml is their one source."""
    data = load_yaml(path)
    objectives = parse(data, str(path))
    return Thresholds(objectives, {key: float(value) for key, value in (data.get("soak") or {}).items()})


def with_overrides(objectives: list[Objective], text: str) -> list[Objective]:
    """The objectives with thresholds replaced for one run: "name=threshold,name=threshold"
    (e.g. "catalog-p95=100ms,errors=0.001"), in the units of the SLO file."""
    by_name = {o.name: o for o in objectives}
    result = dict(by_name)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, raw = (x.strip() for x in item.partition("="))
        if not sep or not raw:
            raise ConfigError(f"SLO override {item!r}: expected objective=threshold")
        if name not in by_name:
            raise ConfigError(
                f"SLO override {item!r}: no objective {name!r} (objectives: {', '.join(by_name)})"
            )
        objective = by_name[name]
        try:
            threshold = parse_duration(raw) if objective.metric in QUANTILES else float(raw)
            if threshold < 0 or (objective.metric in RATIOS and threshold > 1):
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"SLO override {item!r}: {raw!r} is not a valid {objective.metric} threshold"
            ) from None
        result[name] = replace(objective, threshold=threshold)
    return list(result.values())


def objectives_of(options) -> list[Objective]:
    """The objectives a Locust process judges: its --slo-file (else slo.yaml in the working directory,
    else none) with its --slo-overrides."""
    path = located(getattr(options, "slo_file", None), DEFAULT_FILE)
    objectives = load(path) if path is not None else []
    return with_overrides(objectives, getattr(options, "slo_overrides", "") or "")


# A percentile of a response time histogram {ms: count}: Locust's own calculate_response_time_percentile
# (histogram, number of requests, fraction) -> ms. The window's builder (lab.plugin.verdicts) hands it in,
# so that verdicts agree with Locust's figures to the millisecond without core importing Locust.
Percentile = Callable[[dict, int, float], int]


@dataclass
class Window:
    """Request counts, failures and response time histograms (ms -> count) per (method, name) over
    `duration` seconds: a whole run, or the difference of two snapshots of Locust's cumulative stats
    (built by lab.plugin.verdicts)."""

    duration: float
    percentile: Percentile
    requests: dict = field(default_factory=dict)  # (method, name) -> count
    failures: dict = field(default_factory=dict)
    response_times: dict = field(default_factory=dict)  # (method, name) -> {rounded ms: count}
    rate: float | None = None  # requests/s measured by request time, when known (else requests / duration)
    arrivals: int = 0  # the open model's arrivals due in the window (lab.plugin.arrivals), and those dropped
    dropped: int = 0

    def select(self, objective: Objective) -> list:
        return [key for key in self.requests if objective.matches(*key)]

    def describe(self) -> dict:
        total = sum(self.requests.values())
        return {
            "duration_seconds": round(self.duration, 3),
            "requests": total,
            "failures": sum(self.failures.values()),
            "requests_per_second": self.rate
            if self.rate is not None
            else (total / self.duration if self.duration > 0 else 0.0),
        }


def requests_per_second(per_second: dict, start: float, end: float) -> float | None:
    """Requests/s over the whole seconds in [start, end) from Locust's per-second request counts
    (keyed by the second the request was made, on the worker's clock); None if no whole second."""
    seconds = whole_seconds(start, end)
    if not seconds:
        return None
    return count_in(per_second, start, end) / len(seconds)


def whole_seconds(start: float, end: float) -> range:
    """The whole seconds in [start, end): those a per-second count covers completely."""
    return range(math.ceil(start), math.floor(end))


def count_in(per_second: dict, start: float, end: float) -> int:
    """The sum of per-second counts over the whole seconds in [start, end)."""
    return sum(per_second.get(second, 0) for second in whole_seconds(start, end))


def dropped_ratio(dropped: int, due: int) -> float | None:
    """The open model's share of the arrivals due that were dropped (None: none were due). The one
    implementation: the objective, the report's arrivals section and `lab compare` / `lab runs` use it."""
    return dropped / due if due else None


def measure(objective: Objective, window: Window) -> tuple[float | None, int]:
    """The objective's metric over the window, and the number of requests it is based on."""
    keys = window.select(objective)
    requests = sum(window.requests[k] for k in keys)
    if objective.metric == "dropped_ratio":
        return dropped_ratio(window.dropped, window.arrivals), window.arrivals
    if objective.metric == "throughput":
        return (requests / window.duration if window.duration > 0 else 0.0), requests
    if requests == 0:
        return None, 0
    if objective.metric == "error_ratio":
        return sum(window.failures[k] for k in keys) / requests, requests
    merged: dict = {}
    for key in keys:
        for ms, count in window.response_times[key].items():
            merged[ms] = merged.get(ms, 0) + count
    return window.percentile(merged, sum(merged.values()), QUANTILES[objective.metric]) / 1000.0, requests


def judge(objective: Objective, window: Window) -> Verdict:
    value, requests = measure(objective, window)
    if value is None:
        passed = None
    elif objective.bound == "max":
        passed = value <= objective.threshold
    else:
        passed = value >= objective.threshold
    return Verdict(
        objective.name,
        objective.metric,
        passed,
        value,
        objective.threshold,
        objective.bound,
        UNITS[objective.metric],
        requests,
    )


def evaluate(objectives: list[Objective], window: Window) -> list[Verdict]:
    return [judge(objective, window) for objective in objectives]
