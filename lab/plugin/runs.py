"""The run lifecycle on the Locust master (or local runner): identity, results folder, worker loss.

A run starts at `test_start` and again when the stats are reset while a test is running (the web UI
button, or `--reset-stats` after ramp-up), because the exporter's counters restart from zero then.
It gets the id `YYYYmmddTHHMMSSZ-<scenario>` and the folder `$LAB_RESULTS_DIR/<run_id>/`.

`Run.state` goes `running` -> `ending` (test stopping, waiting for the workers' last stats reports)
-> `ended`. A worker sends the requests of its last seconds in the first report after it stopped its
users, up to one report interval later, so the run ends once: when every worker that was running has
sent a report with no users left (bounded by STOP_REPORTS_TIMEOUT, logged when hit), the run's stats
are frozen (`Figures`), its SLOs and capacity judged on them (lab.plugin.verdicts) and every results
file written from them. An ended run is final: resets, a quit, another stop or a new run never touch
its folder, and the exporter keeps serving its frozen figures until the next run starts.
"""

from __future__ import annotations

import copy
import csv
import gc
import io
import json
import logging
import os
import re
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict

import gevent
import yaml
from flask import jsonify, request
from locust.html import get_html_report
from locust.runners import HEARTBEAT_INTERVAL, STATE_MISSING, LocalRunner, MasterRunner
from locust.stats import PERCENTILES_TO_REPORT, RequestStats, StatsCSV, StatsEntry

from lab.core.files import write_atomic
from lab.core.runrecord import RunRecord
from lab.plugin import arrivals

logger = logging.getLogger(__name__)

RESULTS_DIR_ENV = "LAB_RESULTS_DIR"
DEFAULT_SCENARIO = "custom"
# Workers report every WORKER_REPORT_INTERVAL (3 s): two intervals and a second for a loaded machine.
STOP_REPORTS_TIMEOUT = 7.0


class Verdict(Protocol):
    """What the run keeps of one judged SLO objective (lab.core.slo.Verdict, filled in by lab.plugin.verdicts)."""

    objective: str
    passed: bool
    value: float
    threshold: float


class CapacityResult(TypedDict, total=False):
    """The capacity search result (lab.core.capacity, filled in by lab.plugin.shapes): the highest step that met
    the objectives (users and requests/s are None when none did) and every step."""

    users: int | None
    requests_per_second: float | None
    steps: list[dict]


@dataclass(frozen=True)
class Figures:
    """A run's figures frozen at its end: copies of the master's stats, exceptions and arrival totals that
    nothing updates or resets any more. Verdicts, results files and the exporter read an ended run from here."""

    stats: Any  # locust.stats.RequestStats
    exceptions: dict
    user_classes_count: dict
    ended_at: float
    arrivals: Any = None  # lab.plugin.arrivals.Totals: the open model's counts and second clock (None: none)

    @classmethod
    def freeze(cls, runner, ended_at: float) -> Figures:
        users = getattr(runner, "final_user_classes_count", None) or {}
        totals = arrivals.totals_of(runner.environment)
        return cls(
            copy_stats(runner.stats),
            copy.deepcopy(runner.exceptions),
            dict(users),
            ended_at,
            copy.deepcopy(totals),
        )


def copy_stats(stats: RequestStats) -> RequestStats:
    """A copy of Locust's RequestStats that nothing updates any more: each entry's counts and dicts copied.

    Not copy.deepcopy: it would also copy, one object at a time through its memo, the dicts of each
    entry's one-second percentile cache (about 20 a name), which Locust never changes once cached, so
    the copy shares them. A checkpoint freezes the stats every minute: 0.3 ms instead of 20 ms at 20
    names with 600 s of per-second counts."""
    frozen = RequestStats(use_response_times_cache=stats.use_response_times_cache)
    frozen.total = _copy_entry(stats.total, frozen)
    for key, entry in stats.entries.items():
        frozen.entries[key] = _copy_entry(entry, frozen)
    frozen.errors = {key: copy.copy(error) for key, error in stats.errors.items()}
    frozen.history = list(stats.history)  # Locust appends new rows and never changes one
    return frozen


def _copy_entry(entry: StatsEntry, stats: RequestStats) -> StatsEntry:
    copied = copy.copy(entry)  # the numbers; the dicts are copied below
    copied.stats = stats
    copied.response_times = entry.response_times.copy()
    copied.num_reqs_per_sec = entry.num_reqs_per_sec.copy()
    copied.num_fail_per_sec = entry.num_fail_per_sec.copy()
    if entry.response_times_cache is not None:
        copied.response_times_cache = entry.response_times_cache.copy()
    return copied


@dataclass(kw_only=True)
class Run(RunRecord):
    """The run as the master keeps it: its record (run.json) and what it needs while it goes."""

    results_dir: Path
    state: str = "running"
    stage: str | None = None  # the load shape's current stage, set by lab.plugin.shapes
    slo_verdicts: list[Verdict] = field(default_factory=list)
    capacity: CapacityResult | None = None
    figures: Figures | None = None  # set once, when the run ends
    outcome: dict | None = None  # the final verdict and capacity (lab.plugin.verdicts), once ended
    aborted: dict | None = None  # why lab.plugin.verdicts stopped the run early (an abort_after breach)

    def summary(self) -> dict:
        """What `GET /lab/run` returns, for `lab run` to follow a run."""
        return {
            "run_id": self.run_id,
            "scenario": self.scenario,
            "host": self.host,
            "started_at": self.started_at,
            "stage": self.stage,
            "state": self.state,
            "results_dir": str(self.results_dir),
            "invalidated": self.invalidated,
            "ended_at": self.ended_at if self.state == "ended" else None,
            "outcome": self.outcome,
        }


_runs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def current(environment) -> Run | None:
    """The master's (or local runner's) current run; None before the first test starts or on a worker."""
    return _runs.get(environment)


def make_run_id(started_at: float, scenario: str) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_at)) + "-" + scenario


def scenario_of(environment) -> str:
    """The active load shape's `scenario` attribute, made safe for a path and a label, else "custom"."""
    name = getattr(environment.shape_class, "scenario", None) or DEFAULT_SCENARIO
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)) or DEFAULT_SCENARIO


def results_root() -> Path:
    return Path(os.environ.get(RESULTS_DIR_ENV, "results"))


def worker_label(client_id: str) -> str:
    """The host name part of a worker's client id (`<hostname>_<uuid hex>`)."""
    return client_id.rsplit("_", 1)[0]


def start_run(environment) -> Run:
    started_at = time.time()
    scenario = scenario_of(environment)
    run_id = make_run_id(started_at, scenario)
    root = results_root()
    # Two runs in the same second (a reset right after a start) must not share a folder.
    suffix = 1
    while (root / run_id).exists():
        suffix += 1
        run_id = f"{make_run_id(started_at, scenario)}-{suffix}"
    run = Run(
        run_id=run_id,
        scenario=scenario,
        host=environment.host or "",
        started_at=started_at,
        results_dir=root / run_id,
    )
    run.results_dir.mkdir(parents=True, exist_ok=True)
    write_run_json(run)
    _runs[environment] = run
    logger.info("lab: run %s started, results in %s", run.run_id, run.results_dir)
    return run


def write_run_json(run: Run) -> None:
    run.write(run.results_dir)


class _FrozenView:
    """The environment (or its runner) as Locust's CSV and HTML writers read it, with the run's frozen
    stats and exceptions in place of the live ones."""

    def __init__(self, target, **frozen) -> None:
        self._target = target
        self.__dict__.update(frozen)

    def __getattr__(self, name):
        return getattr(self._target, name)


def write_results(environment, run: Run, figures: Figures) -> None:
    """run.json, scenario.yaml, Locust's own CSVs and HTML report, and arrivals.json for an open-model run,
    from the run's frozen figures only."""

    runner = _FrozenView(
        environment.runner,
        stats=figures.stats,
        exceptions=figures.exceptions,
        final_user_classes_count=figures.user_classes_count,
        state="stopped",
    )
    view = _FrozenView(environment, stats=figures.stats, runner=runner)
    write_run_json(run)
    if run.parameters:
        write_atomic(run.results_dir / "scenario.yaml", yaml.safe_dump(run.parameters, sort_keys=False))
    stats_csv = StatsCSV(view, PERCENTILES_TO_REPORT)
    for name, write in (
        ("locust_stats.csv", stats_csv.requests_csv),
        ("locust_failures.csv", stats_csv.failures_csv),
        ("locust_exceptions.csv", stats_csv.exceptions_csv),
    ):
        text = io.StringIO(newline="")
        write(csv.writer(text))
        write_atomic(run.results_dir / name, text.getvalue())
    html = get_html_report(view, show_download_link=False)
    write_atomic(run.results_dir / "locust_report.html", html)
    if figures.arrivals is not None and figures.arrivals.arrivals:  # the open model's: only runs that used it
        data = {"run_id": run.run_id, **arrivals.figures(figures.arrivals)}
        write_atomic(run.results_dir / "arrivals.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
    # Locust's HTML report builds a new Jinja environment at every call, and its compiled 1 MB template
    # and the environment hold each other: garbage that only the cycle collector's rare full passes free.
    # A master writing a checkpoint a minute piled them up between passes, and its resident memory crept
    # up (docs/benchmarks.md: the checkpoint and soak sections). Collected here, once per write.
    gc.collect()


def end_run(environment, run: Run) -> None:
    """The end of a run, once: freeze its figures, judge them, write every results file from them."""
    # verdicts imports this module: imported here, when a run ends, not at load (a circular import)
    from lab.plugin import verdicts

    if run.state == "ended":
        return
    run.ended_at = run.ended_at or time.time()
    run.figures = Figures.freeze(environment.runner, run.ended_at)
    # A capacity search's limiter is measured in Prometheus, which takes seconds: before the run reads as
    # ended, so that whoever sees "ended" (`lab run`) also sees its verdict.
    limits = verdicts.measure_limits(environment)
    run.state = "ended"  # from here on the exporter serves the frozen figures
    run.outcome = verdicts.judge(environment, run, run.figures, limits)
    write_results(environment, run, run.figures)
    logger.info("lab: run %s ended, results in %s", run.run_id, run.results_dir)


def _is_master(runner) -> bool:

    return isinstance(runner, MasterRunner)


def _is_local(runner) -> bool:

    return isinstance(runner, LocalRunner)


class _Lifecycle:
    """Event listeners of one Locust process; only a master or local runner keeps runs."""

    def __init__(self) -> None:
        self.environment = None
        self.worker_states: dict[str, str] = {}
        # While a run is ending on a master: the workers it waits for, and those whose report after
        # the stop (no users left, so every request they made is in it) has arrived.
        self.stopping: set[str] = set()
        self.reported: set[str] = set()
        self.settling = None  # the greenlet that ends the run once the reports are in
        self.previous: Run | None = None  # the run before the current one (`lab run` may follow it)

    def on_init(self, environment, runner=None, web_ui=None, **_kw) -> None:
        if not (_is_master(runner) or _is_local(runner)):
            return

        self.environment = environment
        # Added after the runner's own listener, so that (quitting fires in reverse) the run ends
        # while the master still receives the workers' reports, and before Locust fixes the exit code.
        environment.events.quitting.add_listener(self.on_quitting)
        if web_ui is not None:
            self.add_route(web_ui)
        if _is_master(runner):
            gevent.spawn(self.watch_workers, environment)

    def add_route(self, web_ui) -> None:

        environment = self.environment

        @web_ui.app.route("/lab/run")
        @web_ui.auth_required_if_enabled
        def lab_run():
            """The current run, or with ?run_id= that run if it is the current or the previous one."""

            run = current(environment)
            wanted = request.args.get("run_id")
            if wanted and self.previous is not None and self.previous.run_id == wanted:
                run = self.previous
            if run is None:
                return jsonify({"error": "no run has started yet"}), 404
            if wanted and run.run_id != wanted:
                return jsonify({"error": f"run {wanted} is neither the current nor the previous run"}), 404
            return jsonify(run.summary())

    def next_run(self, environment) -> None:
        self.previous = current(environment)
        start_run(environment)

    def on_test_start(self, environment, **_kw) -> None:
        if environment is self.environment:
            self.next_run(environment)

    def on_reset(self) -> None:
        """Stats are about to be reset: end the run with the stats it had, and start a fresh one.
        A reset after the run ended changes nothing: its figures are frozen."""
        environment = self.environment
        run = current(environment) if environment is not None else None
        if run is None or run.state != "running":
            return
        end_run(environment, run)
        self.next_run(environment)

    def on_spawning_complete(self, **_kw) -> None:
        # Runner.__init__ adds its own listener (which resets the stats) after this plugin's, so the
        # old run still sees its stats here.
        if self.environment is not None and self.environment.reset_stats:
            self.on_reset()

    def on_test_stopping(self, environment, **_kw) -> None:
        """Before the master tells the workers to stop: note which workers the run waits for."""

        run = current(environment) if environment is self.environment else None
        if run is None or run.state != "running":
            return
        run.state = "ending"
        if _is_master(environment.runner):
            self.stopping = {c.id for c in environment.runner.clients.values() if c.state != STATE_MISSING}
            self.reported = set()

    def on_worker_report(self, client_id: str, data: dict, **_kw) -> None:
        if data.get("user_count") == 0:
            self.reported.add(client_id)

    def on_test_stop(self, environment, **_kw) -> None:
        run = current(environment) if environment is self.environment else None
        if run is None or run.state == "ended":
            return
        run.ended_at = time.time()
        if not _is_master(environment.runner):
            end_run(environment, run)
            return

        run.state = "ending"
        self.settling = gevent.spawn(self.settle, environment, run)

    def settle(self, environment, run: Run) -> None:
        """End the run when every worker that was running has reported after the stop."""

        deadline = time.monotonic() + STOP_REPORTS_TIMEOUT
        runner = environment.runner
        while self.stopping - self.reported:
            if not len(runner.greenlet):  # the master has quit: no report can arrive any more
                break
            if time.monotonic() >= deadline:
                break
            gevent.sleep(0.1)
        missing = self.stopping - self.reported
        if missing:
            logger.warning(
                "lab: run %s ends without the final stats report of %d worker(s) (%s): their last "
                "seconds of requests are not in its results",
                run.run_id,
                len(missing),
                ", ".join(sorted(missing)),
            )
        if current(environment) is run:
            end_run(environment, run)

    def on_quitting(self, environment, **_kw) -> None:
        """A quit (SIGTERM, Ctrl-C, the end of a headless run) ends a running run as a stop would."""
        run = current(environment) if environment is self.environment else None
        if run is None or run.state == "ended":
            return
        if run.state == "running":
            environment.runner.stop()  # fires test_stopping and test_stop: the run is ending
        if self.settling is not None:
            self.settling.join()
        end_run(environment, run)  # a local runner, or a master whose test never stopped

    def watch_workers(self, environment) -> None:
        """Record workers that stop sending heartbeats while a run is going (Locust has no event for it)."""

        while True:
            gevent.sleep(HEARTBEAT_INTERVAL)
            run = current(environment)
            clients = environment.runner.clients
            for client_id in list(clients):
                state = clients[client_id].state
                was = self.worker_states.get(client_id)
                if (
                    state == STATE_MISSING
                    and was not in (None, STATE_MISSING)
                    and run
                    and run.state == "running"
                ):
                    run.workers_lost.append(
                        {"worker": worker_label(client_id), "client_id": client_id, "at": time.time()}
                    )
                    logger.warning(
                        "lab: worker %s went missing; run %s is invalidated", client_id, run.run_id
                    )
                    write_run_json(run)
                self.worker_states[client_id] = state
            for gone in set(self.worker_states) - set(clients):
                del self.worker_states[gone]


def register(events) -> None:
    lifecycle = _Lifecycle()
    events.init.add_listener(lifecycle.on_init)
    events.test_start.add_listener(lifecycle.on_test_start)
    events.test_stop.add_listener(lifecycle.on_test_stop)
    events.reset_stats.add_listener(lifecycle.on_reset)
    events.spawning_complete.add_listener(lifecycle.on_spawning_complete)
    events.test_stopping.add_listener(lifecycle.on_test_stopping)
    events.worker_report.add_listener(lifecycle.on_worker_report)
