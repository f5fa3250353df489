"""The SLO verdict of a run, judged once on its frozen figures when it ends (lab.plugin.runs calls
`judge`): log the verdicts, hand them to the Run (the exporter reads them from there), write slo.json
and capacity.json, and fail headless runs whose objectives failed."""

import json
import logging
import sys
import time
from collections import deque
from pathlib import Path

import gevent
from locust.runners import STATE_RUNNING, STATE_SPAWNING, WorkerRunner
from locust.stats import calculate_response_time_percentile, diff_response_time_dicts

from lab.core import limits, slo
from lab.core.capacity import AT_MAXIMUM
from lab.core.prometheus import Prometheus
from lab.core.slo import Window
from lab.core.yamlconf import ConfigError, located
from lab.plugin import arrivals, runs

logger = logging.getLogger(__name__)
# abort_after: objectives are checked every CHECK_SECONDS over the last WINDOW_SECONDS of the run. On a
# master the workers' stats arrive every 3 s, so a breach is seen up to one report interval and one
# check late: a run is stopped within abort_after + WORKER_REPORT_INTERVAL + 2 * CHECK_SECONDS.
CHECK_SECONDS = 1.0
WINDOW_SECONDS = 10.0
# The limiter of a capacity search is measured in Prometheus when the run ends: after one scrape interval
# of the stack (5 s) and a second past the last step, so that its last samples are in; each query gets
# a few seconds, and a Prometheus that does not answer leaves the resources unseen, never fails the run.
SCRAPE_WAIT_SECONDS = 6.0
PROMETHEUS_TIMEOUT_SECONDS = 3.0


def _add_arguments(parser) -> None:
    parser.add_argument(
        "--slo-file",
        env_var="LOCUST_SLO_FILE",
        default="",
        include_in_web_ui=False,
        help=f"Load Lab service level objectives (YAML; default {slo.DEFAULT_FILE} when the working directory "
        "has one); judged at the end of every run",
    )
    parser.add_argument(
        "--slo-overrides",
        env_var="LOCUST_SLO_OVERRIDES",
        default="",
        help="Load Lab SLO thresholds for this run, e.g. catalog-p95=100ms,errors=0.001 (empty: the SLO file's)",
    )
    parser.add_argument(
        "--lab-prometheus-url",
        env_var="LOCUST_LAB_PROMETHEUS_URL",
        default="",
        include_in_web_ui=False,
        help="Load Lab: the Prometheus that scrapes the system under test, where a capacity search measures "
        "what limits it (empty: the limiter is not named)",
    )


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _on_init(environment, **_kwargs) -> None:
    """Fail at start, not at the end of an hour-long run, when the SLO file is wrong."""
    options = environment.parsed_options
    if options is None or isinstance(environment.runner, WorkerRunner):
        return
    if located(options.slo_file, slo.DEFAULT_FILE) is None and not options.slo_overrides:
        logger.info("lab: no %s given or found: SLOs are off", slo.DEFAULT_FILE)
        return
    try:
        slo.objectives_of(options)
    except ConfigError as exc:
        logger.error("%s", exc)
        sys.exit(1)
    gevent.spawn(_watch_breaches, environment)


def _watch_breaches(environment) -> None:
    """Stop a running test once an objective with `abort_after` has been breached that long, judged over
    the last WINDOW_SECONDS; the run's verdict then says it was aborted and why."""
    watched, objectives, history, breached_since = None, [], deque(), {}
    while True:
        gevent.sleep(CHECK_SECONDS)
        run = runs.current(environment)
        if (
            run is None
            or run.state != "running"
            or environment.runner.state not in (STATE_RUNNING, STATE_SPAWNING)
        ):
            continue
        now = time.monotonic()
        if run is not watched:  # a new run: its own objectives (the web UI form may override them)
            watched, history, breached_since = run, deque([(now - (time.time() - run.started_at), {})]), {}
            try:
                objectives = [o for o in slo.objectives_of(environment.parsed_options) if o.abort_after]
            except ConfigError:
                objectives = []  # judged (and reported) at the end of the run
        if not objectives:
            continue
        history.append((now, snapshots(environment)))
        while len(history) > 2 and history[1][0] <= now - WINDOW_SECONDS:
            history.popleft()
        (since, before), after = history[0], history[-1][1]
        window = window_between(before.get("stats", {}), after["stats"], now - since)
        intended = window_between(before.get("intended", {}), after["intended"], now - since)
        on_intended_clock(window, intended.response_times)
        for objective in objectives:
            verdict = slo.judge(objective, window)
            if verdict.passed is not False:
                breached_since.pop(objective.name, None)
                continue
            breached_for = now - breached_since.setdefault(objective.name, now)
            if breached_for >= objective.abort_after:
                _abort(environment, run, objective, verdict, breached_for)
                break


def _abort(environment, run, objective, verdict, breached_for: float) -> None:
    reason = (
        f"{verdict.describe()} over the last {WINDOW_SECONDS:g} s, breached for {breached_for:.0f} s "
        f"(abort_after {objective.abort_after:g} s)"
    )
    run.aborted = {
        "objective": objective.name,
        "at": time.time(),
        "breached_for_seconds": breached_for,
        "reason": reason,
    }
    logger.error("lab: run %s aborted: %s", run.run_id, reason)
    runner = environment.runner
    headless = environment.parsed_options is not None and environment.parsed_options.headless
    # Headless, Locust ends the process when the runner quits, as at the end of its run time.
    gevent.spawn(runner.quit if headless else runner.stop)


def snapshot(stats) -> dict:
    """Locust's cumulative per-request stats now: {(method, name): (requests, failures, histogram)}."""
    return {
        (entry.method, entry.name): (entry.num_requests, entry.num_failures, dict(entry.response_times))
        for entry in stats.entries.values()
    }


def snapshots(environment) -> dict:
    """Locust's cumulative stats now and the open model's intended-start ones (empty in a closed run)."""
    totals = arrivals.totals_of(environment)
    return {
        "stats": snapshot(environment.stats),
        "intended": snapshot(totals.intended) if totals is not None else {},
    }


def on_intended_clock(window: Window, intended: dict) -> Window:
    """The window's latency on the open model's clock, from each arrival's due time (its response time
    plus its wait for a free user), for every request that served an arrival; Locust's own for the
    others (none in a pool; all in a closed run). Latency objectives of a `rate` run are judged on it:
    Locust's clock leaves the wait out, the coordinated omission the open model is there to show."""
    window.response_times = {key: intended.get(key, times) for key, times in window.response_times.items()}
    return window


def window_between(before: dict, after: dict, duration: float):
    """The lab.core.slo.Window of what happened between two snapshots, with Locust's percentiles."""
    window = Window(duration=duration, percentile=calculate_response_time_percentile)
    for key, (requests, failures, times) in after.items():
        old_requests, old_failures, old_times = before.get(key, (0, 0, {}))
        window.requests[key] = requests - old_requests
        window.failures[key] = failures - old_failures
        window.response_times[key] = diff_response_time_dicts(times, old_times)
    return window


def judge(environment, run, figures, measured_limits: dict | None = None) -> dict | None:
    """Judge a run's SLOs (and take its capacity) on its frozen figures, write slo.json and
    capacity.json, and fail a headless run whose objectives failed. Called once, by lab.plugin.runs
    at the end of the run; returns the outcome `GET /lab/run` serves (None without the SLO options)."""
    options = environment.parsed_options
    if options is None or not hasattr(options, "slo_file"):
        return None  # the verdicts part of the plugin is not loaded
    headless = bool(getattr(options, "headless", False))
    results_dir = Path(run.results_dir)
    try:
        objectives = slo.objectives_of(options)
    except ConfigError as exc:  # e.g. overrides sent with the web UI form: no verdict without objectives
        logger.error("SLO not judged: %s", exc)
        environment.process_exit_code = 1
        outcome = {"passed": False, "failed": [], "error": str(exc)}
        _write_json(results_dir / "slo.json", {"run_id": run.run_id, "scenario": run.scenario, **outcome})
        return outcome
    search = getattr(environment.shape_class, "search", None)
    capacity = None
    if search is not None and search.steps:
        # A capacity run is judged at its capacity step, the load it promises to carry (or at its
        # first step when even that breached).
        capacity = {**search.to_dict(), "reason": search.reason or "stopped"}
        capacity |= measured_limits or limits.measure(None, capacity["steps"], "not measured")
        if "rate" not in capacity:  # a users search (a rate search's verdict is told in arrivals/s)
            capacity["at_least"] = limits.at_least(capacity)
            capacity["sentence"] = limits.capacity_sentence(capacity)
            logger.info("lab: %s", capacity["sentence"])
        window = search.capacity_window or search.windows[0]
    else:
        duration = figures.ended_at - run.started_at
        window = window_between({}, snapshot(figures.stats), duration)
        totals = figures.arrivals
        if totals is not None:
            window.arrivals, window.dropped = totals.arrivals, totals.dropped
            on_intended_clock(window, window_between({}, snapshot(totals.intended), duration).response_times)
    verdicts = slo.evaluate(objectives, window)
    for verdict in verdicts:
        logger.info("SLO %s", verdict.describe())
    failed = [v.objective for v in verdicts if v.passed is False]
    if run.aborted and run.aborted["objective"] not in failed:
        failed.append(run.aborted["objective"])  # breached while running, whatever the whole run's figure
    if failed:
        logger.error("SLO failed: %s", ", ".join(failed) + (" (run aborted)" if run.aborted else ""))
        if headless:
            environment.process_exit_code = 1
    run.slo_verdicts = [v for v in verdicts if v.passed is not None]
    outcome = {
        "passed": not failed,
        "failed": failed,
        "aborted": run.aborted,
        "window": window.describe(),
        "objectives": [v.to_dict() for v in verdicts],
    }
    _write_json(results_dir / "slo.json", {"run_id": run.run_id, "scenario": run.scenario, **outcome})
    if capacity is not None:
        run.capacity = capacity
        _write_json(results_dir / "capacity.json", {"run_id": run.run_id, **capacity})
    return {**outcome, "capacity": capacity}


def measure_limits(environment) -> dict | None:
    """What limits a capacity search (lab.core.limits.measure over its steps) in the Prometheus of
    --lab-prometheus-url, once its last samples are scraped; None when the run is no capacity search."""
    search = getattr(environment.shape_class, "search", None)
    options = environment.parsed_options
    if search is None or not search.steps or options is None:
        return None
    steps = [step.to_dict() for step in search.steps]
    # Nothing ended a search that ran every step (its reason is set once the last step has run).
    at_maximum = search.reason in (None, *AT_MAXIMUM)
    url = getattr(options, "lab_prometheus_url", "")
    if not url:
        return limits.measure(
            None, steps, "no Prometheus given (--lab-prometheus-url / LOCUST_LAB_PROMETHEUS_URL)", at_maximum
        )
    gevent.sleep(
        max(0.0, min(SCRAPE_WAIT_SECONDS, steps[-1]["ended_at"] + SCRAPE_WAIT_SECONDS - time.time()))
    )
    return limits.measure(Prometheus(url, timeout=PROMETHEUS_TIMEOUT_SECONDS), steps, at_maximum=at_maximum)


def register(events) -> None:
    events.init_command_line_parser.add_listener(_add_arguments)
    events.init.add_listener(_on_init)
