"""`lab report [RUN_ID]`: the stakeholder report of a run, as report.html and report.json.

The whole-run and per-endpoint client figures are Locust's own, read from the run's results folder
(lab.core.results): exact, and there as long as the folder is. Prometheus gives what only it has: the
figures over time (plots, soak drift, capacity steps' percentiles) and the server side. Three layers:
`fetch` runs the PromQL queries of `queries` (None when Prometheus is unreachable: the report is
still written, saying the time series are missing); `build` turns files and query results into the
report's figures (unit-tested on fixed responses); `lab.report.plots` and `lab.report.html` draw them.
"""

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

from lab.core import conventions, limits, results, slo, yamlconf
from lab.core.config import Lab
from lab.core.conventions import INSTRUMENTATOR
from lab.core.errors import LabError
from lab.core.files import check_writable, write_atomic
from lab.core.prometheus import Prometheus, label_value
from lab.core.runrecord import RunRecord
from lab.report import analysis
from lab.report import html as report_html

QUANTILES = (0.5, 0.95, 0.99)
PERCENTILE_METHOD = (
    "Whole-run and per-endpoint figures are Locust's own, from the run's locust_stats.csv (the same "
    "figures the SLO verdicts were judged on). Percentiles over time are estimated from the "
    "locust_request_duration_seconds histogram (bucket upper bounds in ms: {bounds}) by linear "
    "interpolation inside the bucket that holds the rank, as Prometheus's histogram_quantile does, from "
    "the counts' differences over {step} intervals: exact to within the bucket that holds them."
)
NO_SERIES = (
    "The time series are missing: {reason}. The whole-run and per-endpoint figures, the SLO verdicts and "
    "the capacity are complete (from the run's files); the plots, the server side and the soak drift need "
    "Prometheus with the run's samples."
)
# The capacity search's knee rule when capacity.json does not say (scenarios.yaml's default).
DEFAULT_MIN_GROWTH = 0.25
# The demo API's job and your own API's (TARGET_METRICS).
API = 'job="api"'
TARGET = f'job="{conventions.TARGET_JOB}"'


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write results/<run_id>/report.html and report.json for a run",
        description="Read a run's window from Prometheus and its results folder and write "
        "report.html (self-contained, plots embedded) and report.json.",
    )
    parser.add_argument("run_id", nargs="?", help="the run to report (default: the latest run)")
    add_source_arguments(parser)
    parser.add_argument(
        "--slo",
        type=Path,
        default=os.environ.get("LAB_SLO_FILE"),
        help="SLO file with the capacity criteria and soak limits (env LAB_SLO_FILE, default locust/slo.yaml)",
    )
    parser.set_defaults(func=main)


def add_source_arguments(parser, prometheus: bool = True) -> None:
    """--prometheus and --results (`lab compare` and `lab runs` read only the results folder)."""
    if prometheus:
        parser.add_argument(
            "--prometheus",
            default=os.environ.get("PROMETHEUS_URL"),
            help="Prometheus URL (env PROMETHEUS_URL, default the lab's: http://127.0.0.1:$PROMETHEUS_PORT)",
        )
    parser.add_argument(
        "--results",
        type=Path,
        default=os.environ.get("LAB_RESULTS_DIR"),
        help="results folder (env LAB_RESULTS_DIR, default the lab's results/)",
    )


def resolve_sources(args) -> None:
    """Fill in what the options and environment left unset from the lab's settings (.env), as `lab run` does."""
    wants_prometheus = hasattr(args, "prometheus")
    if (wants_prometheus and args.prometheus is None) or args.results is None:
        lab = Lab.from_environment()
        if wants_prometheus:
            args.prometheus = args.prometheus or lab.url("PROMETHEUS_PORT", "9090")
        args.results = args.results or lab.results_dir()


def main(args) -> int:
    from lab.report import plots as report_plots  # matplotlib takes seconds to import: only when drawing

    resolve_sources(args)
    slo_file = args.slo or Path(os.environ.get("LAB_HOME") or ".") / "locust" / "slo.yaml"
    run = load_run(args.results, args.run_id)
    if args.slo is not None and not args.slo.is_file():
        raise LabError(f"no SLO file {args.slo}: give an existing file with --slo (or LAB_SLO_FILE)")
    thresholds = load_thresholds(slo_file)
    check_writable(run.folder, fix="pass --results DIR with a copy of the run's folder")
    try:
        data = fetch(Prometheus(args.prometheus), run)
    except LabError as exc:
        data = None
        missing = str(exc)
    else:
        missing = None
    report = build(run, data, results.verdict_files(run.folder), thresholds, missing)
    if missing:  # after the run's own files were read: an error there is the one line, not this
        print(f"lab: warning: {missing}; writing the report without time series", file=sys.stderr)
    html = report_html.render(report, report_plots.draw(report))
    write_atomic(run.folder / "report.html", html, fix="pass --results DIR")
    write_atomic(run.folder / "report.json", json.dumps(strip_series(report), indent=2) + "\n")
    if run.partial:
        print(
            f"note: run {run.run_id} ended without a stop (or is still going): its results are the partial "
            f"ones the master wrote at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(run.end))}, and this "
            "report covers the run up to then"
        )
    print(f"wrote {run.folder / 'report.html'} and report.json")
    return 0


def load_run(results: Path, run_id: str | None) -> RunRecord:
    """The run's identity from results/<run_id>/run.json; the latest run when no id is given."""
    if run_id is None:
        runs = sorted(p.parent.name for p in results.glob("*/run.json"))
        if not runs:
            raise LabError(f"no runs in {results}/: start one with `lab run SCENARIO` or pass --results DIR")
        run_id = runs[-1]
    folder = results / run_id
    if not (folder / "run.json").is_file():
        raise LabError(f"unknown run id {run_id!r}: no {folder / 'run.json'}; `lab runs` lists the runs")
    return RunRecord.read(folder)


def load_thresholds(path: Path) -> dict:
    """The SLO file's objectives (the capacity criteria) and soak limits (lab.core.slo.load_thresholds:
    locust/slo.yaml is their one source); a soak limit the file does not set is not judged."""
    if not path.is_file():
        return {"objectives": [], "soak": {}, "source": "no SLO file"}
    try:
        thresholds = slo.load_thresholds(path)
    except yamlconf.ConfigError as exc:
        raise LabError(str(exc)) from None
    return {"objectives": thresholds.objectives, "soak": thresholds.soak, "source": str(path)}


def range_step(duration: float) -> float:
    """Seconds between points over time: at least the stack's 5 s scrape interval, at most ~300 points."""
    return max(5.0, math.ceil(duration / 300.0))


def rate_window(duration: float) -> float:
    """rate() range of the server-side counters: several scrapes, and no gaps between points."""
    return max(30.0, 2 * range_step(duration))


def queries(run: RunRecord) -> dict[str, tuple[str, str]]:
    """name -> PromQL of a range query over the run's window."""
    sel = "{run_id=" + label_value(run.run_id) + "}"
    rw = f"[{int(rate_window(run.end - run.started_at))}s]"
    over_time = {
        "users": f"sum(locust_users{sel})",
        # The run's counters as they are (they start at 0): differences give exact counts per interval.
        "cumulative_buckets": f"sum by (le) (locust_request_duration_seconds_bucket{sel})",
        "cumulative_requests": f"sum(locust_requests_total{sel})",
        "cumulative_failures": f"sum(locust_request_failures_total{sel})",
        "api_latency_buckets": INSTRUMENTATOR.bucket_rates(API, rw),
        "api_rps": INSTRUMENTATOR.request_rate(API, rw),
        "api_5xx_rate": INSTRUMENTATOR.server_error_rate(API, rw),
        "api_rss": conventions.resident_memory(API),
        "locust_rss": conventions.resident_memory('job="locust"'),
        "pg_xact_rate": f"sum(rate(pg_stat_database_xact_commit{rw}))",
        "pg_connections": "sum(pg_stat_activity_count)",
        "redis_commands_rate": f"sum(rate(redis_commands_processed_total{rw}))",
        "redis_memory": "sum(redis_memory_used_bytes)",
        # The open model (lab.plugin.arrivals): no series for a closed run.
        "arrival_rate": f"sum(locust_arrival_rate{sel})",
        "cumulative_arrivals": f"sum(locust_arrivals_total{sel})",
        "cumulative_dropped": f"sum(locust_arrivals_dropped_total{sel})",
        "cumulative_started": f"sum(locust_arrival_lateness_seconds_count{sel})",
        "intended_buckets": f"sum by (le) (locust_request_intended_duration_seconds_bucket{sel})",
        # Your own API (TARGET_METRICS): every convention's queries; `build` keeps the first with data.
        **{
            f"target_{name}.{c.key}": query
            for c in conventions.CONVENTIONS
            for name, query in (
                ("rps", c.request_rate(TARGET, rw)),
                ("5xx_rate", c.server_error_rate(TARGET, rw)),
                ("latency_buckets", c.bucket_rates(TARGET, rw)),
            )
        },
        "target_cpu": conventions.cpu_cores(TARGET, rw),
        "target_rss": conventions.resident_memory(TARGET),
    }
    return over_time


def fetch(prom: Prometheus, run: RunRecord) -> dict[str, list]:
    """The raw `result` of every range query in `queries`, keyed by name."""
    step = range_step(run.end - run.started_at)
    return {
        name: prom.query_range(promql, run.started_at, run.end, step) for name, promql in queries(run).items()
    }


def series(result: list) -> list[tuple[float, float]]:
    """The points of a single-series matrix (a `sum(...)`), NaN and missing as empty."""
    if not result:
        return []
    return [(float(t), float(v)) for t, v in result[0]["values"] if not math.isnan(float(v))]


def endpoint_key(metric: dict) -> str:
    return f"{metric.get('method', '')} {metric.get('name', '')}".strip()


def build(
    run: RunRecord, data: dict[str, list] | None, extras: dict, thresholds: dict, missing: str | None = None
) -> dict:
    """The report's figures (what report.json holds) plus the time series the plots need. `data` is
    None when Prometheus could not be read (`missing` says why)."""
    duration = run.end - run.started_at
    endpoints = results.client_figures(run.folder, duration)
    overall = endpoints.pop("overall")
    if data is None:
        data = dict.fromkeys(queries(run), [])
    elif not any(result for result in data.values()):
        missing = (
            f"Prometheus has no Locust samples of run {run.run_id} (was job 'locust' scraped during it?)"
        )
    bounds = sorted(
        {analysis.parse_le(s["metric"]["le"]) for s in data["cumulative_buckets"]} - {analysis.INF}
    )
    users = series(data["users"])
    spans = analysis.intervals(run.started_at, run.end, range_step(duration))
    requests = series(data["cumulative_requests"])
    rps = analysis.counter_rates(requests, spans) if requests else []
    failures = dict(analysis.counter_rates(series(data["cumulative_failures"]), spans))
    counts = {name: series(data[f"cumulative_{name}"]) for name in ("arrivals", "dropped", "started")}
    target = conventions.detect(lambda c: bool(series(data[f"target_rps.{c.key}"])))
    target_latency = (
        analysis.bucket_series_quantiles(
            data[f"target_latency_buckets.{target.key}"], QUANTILES, target.seconds_per_unit
        )
        if target
        else {q: [] for q in QUANTILES}
    )
    over_time = {
        "users": users,
        "rps": rps,
        "error_ratio": [(t, failures[t] / v if v else None) for t, v in rps],
        "latency": analysis.window_quantiles(data["cumulative_buckets"], spans, QUANTILES),
        "api_latency": analysis.bucket_series_quantiles(data["api_latency_buckets"], QUANTILES),
        "offered_rate": series(data["arrival_rate"]),
        **{
            f"{name}_rate": analysis.counter_rates(points, spans) if points else []
            for name, points in counts.items()
        },
        "intended_latency": analysis.window_quantiles(data["intended_buckets"], spans, QUANTILES),
        "target_latency": target_latency,
        "target_rps": series(data[f"target_rps.{target.key}"]) if target else [],
        "target_5xx_rate": series(data[f"target_5xx_rate.{target.key}"]) if target else [],
        **{
            name: series(data[name])
            for name in (
                "api_rps",
                "api_5xx_rate",
                "api_rss",
                "locust_rss",
                "pg_xact_rate",
                "pg_connections",
                "redis_commands_rate",
                "redis_memory",
                "target_cpu",
                "target_rss",
            )
        },
    }
    # The API under test's memory for the soak's drift: the demo API's, or yours (TARGET_METRICS).
    over_time["service_rss"] = over_time["api_rss"] or over_time["target_rss"]
    report = {
        "run": {
            "run_id": run.run_id,
            "scenario": run.scenario,
            "host": run.host,
            "started_at": run.started_at,
            "ended_at": run.ended_at,
            "duration_seconds": duration,
            "workers_lost": run.workers_lost,
            "partial": run.partial,
        },
        "summary": {**overall, "peak_users": max((v for _, v in users), default=None)},
        "endpoints": dict(sorted(endpoints.items())),
        "server": {**server_summary(over_time), "target_convention": target.name if target else None},
        "server_sections": server_sections(over_time),
        "errors": results.failures(run.folder),
        "slo": extras["slo"].get("objectives") if "slo" in extras else None,
        "capacity": capacity_section(extras["capacity"], thresholds["objectives"], data)
        if "capacity" in extras
        else None,
        "soak": soak_section(over_time, thresholds) if "soak" in run.scenario else None,
        "arrivals": arrivals_section(extras["arrivals"], endpoints, overall, duration)
        if "arrivals" in extras
        else None,
        "time_series_missing": None if missing is None else NO_SERIES.format(reason=missing),
        "percentile_method": PERCENTILE_METHOD.format(
            bounds=", ".join(f"{b * 1000:g}" for b in bounds),
            step=f"{range_step(duration):g} s",
        ),
        "series": over_time,
    }
    return report


SERVER_SERIES = {
    # report.json key: (series in over_time, how to reduce it over the window)
    "api_requests_per_second_mean": ("api_rps", "mean"),
    "api_5xx_per_second_mean": ("api_5xx_rate", "mean"),
    "api_resident_memory_bytes_max": ("api_rss", "max"),
    "postgres_commits_per_second_mean": ("pg_xact_rate", "mean"),
    "postgres_connections_max": ("pg_connections", "max"),
    "redis_commands_per_second_mean": ("redis_commands_rate", "mean"),
    "redis_memory_bytes_max": ("redis_memory", "max"),
    "locust_resident_memory_bytes_max": ("locust_rss", "max"),
    "target_requests_per_second_mean": ("target_rps", "mean"),
    "target_5xx_per_second_mean": ("target_5xx_rate", "mean"),
    "target_cpu_cores_mean": ("target_cpu", "mean"),
    "target_cpu_cores_max": ("target_cpu", "max"),
    "target_resident_memory_bytes_max": ("target_rss", "max"),
}
# The server side's sections, each shown only when one of its series has data in the run's window:
# your own API (TARGET_METRICS) or the demo API, Postgres and Redis (the demo profile).
SERVER_SECTIONS = {
    "target": ("target_rps", "target_cpu", "target_rss"),
    "api": ("api_rps", "api_rss"),
    "postgres": ("pg_xact_rate", "pg_connections"),
    "redis": ("redis_commands_rate", "redis_memory"),
}


def server_sections(over_time: dict) -> list[str]:
    """The sections of SERVER_SECTIONS that have a source in this window, in its order."""
    return [name for name, keys in SERVER_SECTIONS.items() if any(over_time[key] for key in keys)]


def server_summary(over_time: dict) -> dict:
    """The server side in figures: each series' mean or peak over the run's window (None: no data)."""
    summary = {}
    for key, (name, how) in SERVER_SERIES.items():
        values = [v for _, v in over_time[name]]
        if not values:
            summary[key] = None
        else:
            summary[key] = sum(values) / len(values) if how == "mean" else max(values)
    for prefix in ("api", "target"):
        p95 = [v for _, v in over_time[f"{prefix}_latency"][0.95] if v is not None]
        summary[f"{prefix}_p95_seconds_max"] = max(p95) if p95 else None
    return summary


def capacity_section(capacity: dict, objectives: list, data: dict[str, list]) -> dict:
    """capacity.json's search with each step's p95 and error ratio over its steady window, the knee,
    and the sentence a stakeholder can repeat."""
    requests, failures = series(data["cumulative_requests"]), series(data["cumulative_failures"])
    steps = []
    for step in capacity.get("steps") or []:
        start, end = step["started_at"], step["ended_at"]
        count = analysis.value_at(requests, end) - analysis.value_at(requests, start)
        failed = analysis.value_at(failures, end) - analysis.value_at(failures, start)
        histogram = analysis.window_histogram(data["cumulative_buckets"], start, end)
        steps.append(
            {
                "users": step["users"],
                "offered_rate": step.get("offered_rate"),  # a rate search's step: arrivals/s offered
                "requests_per_second": step["requests_per_second"],
                "p95_seconds": analysis.histogram_quantile(0.95, histogram),
                "error_ratio": failed / count if count else None,
                "passed": step["passed"],
                "breached": step.get("breached", []),
                "started_at": start,
                "ended_at": end,
            }
        )
    # The thresholds the steps were judged by (`lab run --slo` may have overridden the file's for the run).
    used = {
        v["objective"]: v["threshold"]
        for step in capacity.get("steps") or []
        for v in step.get("verdicts", [])
    }
    if used:
        objectives = [dataclasses.replace(o, threshold=used[o.name]) for o in objectives if o.name in used]
    min_growth = capacity.get("min_growth", DEFAULT_MIN_GROWTH)
    knee = analysis.find_knee(steps, min_growth)
    users, rps = capacity.get("users"), capacity.get("requests_per_second")
    criteria = criteria_text([o for o in objectives if o.metric != "throughput"])  # not judged per step
    rate_search = "rate" in capacity
    if rate_search and capacity["rate"] is None:
        first = f"{steps[0]['offered_rate']:g} arrivals/s" if steps else "?"
        sentence = f"{criteria}, the API did not carry even the first step ({first}) on this stack."
    elif rate_search:
        sentence = (
            f"{criteria}, the API carries {capacity['rate']:g} arrivals/s offered, {rps:.0f} requests/s, "
            "on this stack."
        )
    else:
        measured = limits.capacity_sentence(capacity)  # the master's own sentence, from the same figures
        sentence = f"{criteria}, {measured[0].lower()}{measured[1:]}"
    p95 = [o.threshold for o in objectives if o.metric == "latency_p95" and o.requests == ("*",)]
    return {
        "steps": steps,
        "min_growth": min_growth,
        "knee": None
        if knee is None
        else {"users": steps[knee]["users"], "requests_per_second": steps[knee]["requests_per_second"]},
        "users": users,
        "requests_per_second": rps,
        "rate": capacity.get("rate"),  # a rate search: the offered arrivals/s of the capacity step
        "rate_search": rate_search,
        "stopped_by": capacity.get("reason"),
        "p95_limit_seconds": p95[0] if p95 else None,
        "sentence": sentence,
        "at_least": limits.at_least(capacity),
        # What limits it (lab.core.limits, measured by the master when the search ended).
        "limiter": capacity.get("limiter"),
        "resources": capacity.get("resources") or {},
        "not_seen": capacity.get("not_seen"),
        "saturated_at": capacity.get("saturated_at", limits.SATURATED),
    }


def arrivals_section(arrivals: dict, endpoints: dict, overall: dict, duration: float) -> dict:
    """An open-model run's arrivals (arrivals.json, the master's frozen counts): offered (due) against
    started and dropped, the lateness, and per endpoint both clocks' percentiles side by side, Locust's
    response time (locust_stats.csv) and the intended-start latency, each by Locust's percentile function."""
    due, dropped, started = arrivals["arrivals"], arrivals["dropped"], arrivals["started"]
    per_second = (lambda n: n / duration) if duration > 0 else (lambda n: 0.0)
    clocks = []
    for key, intended in arrivals["intended"].items():
        response = overall if key == "overall" else endpoints.get(key, {})
        clocks.append(
            {
                "endpoint": key,
                "requests": intended["requests"],
                "response": {q: response.get(q) for q in results.PERCENTILE_COLUMNS},
                "intended": {q: intended[q] for q in results.PERCENTILE_COLUMNS},
            }
        )
    return {
        "arrivals": due,
        "dropped": dropped,
        "started": started,
        "dropped_ratio": slo.dropped_ratio(dropped, due),
        "offered_per_second": per_second(due),
        "started_per_second": per_second(started),
        "requests_per_second": overall["requests_per_second"],
        "lateness": arrivals["lateness"],
        "clocks": clocks,
    }


def criteria_text(objectives: list) -> str:
    """ "At p95 under 500 ms and errors under 1%": the SLO objectives a capacity step must meet."""
    parts = []
    for o in objectives:
        if o.metric == "error_ratio":
            text = f"errors under {o.threshold * 100:g}%"
        elif o.metric == "throughput":
            text = f"at least {o.threshold:g} requests/s"
        elif o.metric == "dropped_ratio":
            text = f"dropped arrivals under {o.threshold * 100:g}%"
        else:
            limit = f"{o.threshold:g} s" if o.threshold >= 1 else f"{o.threshold * 1000:g} ms"
            text = f"{o.metric.removeprefix('latency_')} under {limit}"
        parts.append(text if o.requests == ("*",) else f"{text} for {', '.join(o.requests)}")
    if not parts:
        return "Within the objectives the run was judged by"
    return "At " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])


SOAK_CHECKS = (
    # (name, series in over_time, threshold key, unit of the series)
    ("p95 latency", "p95", "max_p95_slope_seconds_per_hour", "seconds"),
    ("error ratio", "error_ratio", "max_error_ratio_slope_per_hour", "ratio"),
    ("API resident memory", "service_rss", "max_api_memory_slope_bytes_per_hour", "bytes"),
    ("Locust master resident memory", "locust_rss", "max_locust_memory_slope_bytes_per_hour", "bytes"),
)


def soak_section(over_time: dict, thresholds: dict) -> dict:
    """Drift over the steady part (the run at its peak user count), per hour, by analysis.drift: a
    check passes when its series grows less than its limit, and shows its plateau when it has one."""
    window = analysis.steady_window(over_time["users"])
    checks = []
    for label, key, limit_key, unit in SOAK_CHECKS:
        points = over_time["latency"][0.95] if key == "p95" else over_time[key]
        found = analysis.drift(points, *window) if window else None
        limit = thresholds["soak"].get(limit_key)  # None: the SLO file sets no limit, not judged
        checks.append(
            {
                "check": label,
                "drift_per_hour": None if found is None else found["per_hour"],
                "max_drift_per_hour": limit,
                "unit": unit,
                "middle": None if found is None else found["middle"],
                "last": None if found is None else found["last"],
                "plateau": None if found is None else found["plateau"],
                # Without data, no drift can be claimed absent: a missing series fails the check.
                "passed": None if limit is None else found is not None and found["per_hour"] < limit,
            }
        )
    return {
        "window": list(window) if window else None,
        "method": "median of the last third of the steady part minus the median of its middle third, per hour",
        "checks": checks,
        "verdict": "PASS" if all(c["passed"] is not False for c in checks) else "FAIL",
        "thresholds_source": thresholds["source"],
    }


def strip_series(report: dict) -> dict:
    """report.json holds the figures, not the plotted time series."""
    return {k: v for k, v in report.items() if k != "series"}
