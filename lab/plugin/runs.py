"""The run lifecycle on the Locust master (or local runner): identity, results folder, worker loss.

A run starts at `test_start` and again when the stats are reset while a test is running (the web UI
button, or `--reset-stats` after ramp-up), because the exporter's counters restart from zero then.
It gets the id `YYYYmmddTHHMMSSZ-<scenario>` and the folder `$LAB_RESULTS_DIR/<run_id>/`.

`Run.state` goes `running` -> `ending` (test stopped, waiting for the workers' last stats reports)
-> `ended` (results written). The master merges each worker's stats a few seconds after the worker
stopped its users, so results are written once every worker has reported after the stop (bounded by
two report intervals), and once more at `quitting`, after the final reports a quit brings.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypedDict

logger = logging.getLogger(__name__)

RESULTS_DIR_ENV = "LAB_RESULTS_DIR"
DEFAULT_SCENARIO = "custom"


class Verdict(Protocol):
    """What the run keeps of one judged SLO objective (lab.core.slo.Verdict, filled in by lab.plugin.verdicts)."""

    objective: str
    passed: bool
    value: float
    threshold: float


class Capacity(TypedDict, total=False):
    """The capacity search result (lab.core.capacity, filled in by lab.plugin.shapes): the highest step that met
    the objectives (users and requests/s are None when none did) and every step."""

    users: int | None
    requests_per_second: float | None
    steps: list[dict]


@dataclass
class Run:
    run_id: str
    scenario: str
    host: str
    started_at: float
    results_dir: Path
    state: str = "running"
    stage: str | None = None  # the load shape's current stage, set by lab.plugin.shapes
    ended_at: float | None = None
    parameters: dict = field(default_factory=dict)  # scenario parameters, set by lab.plugin.scenarios
    workers_lost: list[dict] = field(default_factory=list)
    slo_verdicts: list[Verdict] = field(default_factory=list)
    capacity: Capacity | None = None

    @property
    def invalidated(self) -> bool:
        """A run that lost a worker sent less load than asked, so its figures are not comparable."""
        return bool(self.workers_lost)

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
        }

    def record(self) -> dict:
        """The content of run.json."""
        return {
            "run_id": self.run_id,
            "scenario": self.scenario,
            "host": self.host,
            "start": self.started_at,
            "end": self.ended_at,
            "parameters": self.parameters,
            "workers_lost": self.workers_lost,
            "invalidated": self.invalidated,
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
    path = run.results_dir / "run.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(run.record(), indent=2) + "\n")
    tmp.replace(path)  # readers never see a half-written file


def write_results(environment, run: Run) -> None:
    """run.json, scenario.yaml, Locust's own CSVs and HTML report, from the stats as they are now."""
    from locust.html import get_html_report
    from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

    write_run_json(run)
    if run.parameters:
        import yaml

        (run.results_dir / "scenario.yaml").write_text(yaml.safe_dump(run.parameters, sort_keys=False))
    stats_csv = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for name, write in (
        ("locust_stats.csv", stats_csv.requests_csv),
        ("locust_failures.csv", stats_csv.failures_csv),
        ("locust_exceptions.csv", stats_csv.exceptions_csv),
    ):
        with open(run.results_dir / name, "w", newline="") as f:
            write(csv.writer(f))
    html = get_html_report(environment, show_download_link=False)
    (run.results_dir / "locust_report.html").write_text(html, encoding="utf-8")


def end_run(environment, run: Run) -> None:
    """Write the final results once; later calls (settle greenlet, quitting) do nothing."""
    if run.state == "ended":
        return
    run.ended_at = run.ended_at or time.time()
    write_results(environment, run)
    run.state = "ended"
    logger.info("lab: run %s ended, results in %s", run.run_id, run.results_dir)


def _is_master(runner) -> bool:
    from locust.runners import MasterRunner

    return isinstance(runner, MasterRunner)


def _is_local(runner) -> bool:
    from locust.runners import LocalRunner

    return isinstance(runner, LocalRunner)


class _Lifecycle:
    """Event listeners of one Locust process; only a master or local runner keeps runs."""

    def __init__(self) -> None:
        self.environment = None
        self.last_report: dict[str, float] = {}  # worker client id -> monotonic time of its last report
        self.worker_states: dict[str, str] = {}

    def on_init(self, environment, runner=None, web_ui=None, **_kw) -> None:
        if not (_is_master(runner) or _is_local(runner)):
            return
        import gevent

        self.environment = environment
        if web_ui is not None:
            self.add_route(web_ui)
        if _is_master(runner):
            gevent.spawn(self.watch_workers, environment)

    def add_route(self, web_ui) -> None:
        from flask import jsonify

        environment = self.environment

        @web_ui.app.route("/lab/run")
        @web_ui.auth_required_if_enabled
        def lab_run():
            run = current(environment)
            if run is None:
                return jsonify({"error": "no run has started yet"}), 404
            return jsonify(run.summary())

    def on_test_start(self, environment, **_kw) -> None:
        if environment is self.environment:
            start_run(environment)

    def on_reset(self) -> None:
        """Stats are about to be reset: end the run with the stats it had, and start a fresh one."""
        environment = self.environment
        run = current(environment) if environment is not None else None
        if run is None or run.state != "running":
            return
        end_run(environment, run)
        start_run(environment)

    def on_spawning_complete(self, **_kw) -> None:
        # Runner.__init__ adds its own listener (which resets the stats) after this plugin's, so the
        # old run still sees its stats here.
        if self.environment is not None and self.environment.reset_stats:
            self.on_reset()

    def on_worker_report(self, client_id: str, **_kw) -> None:
        self.last_report[client_id] = time.monotonic()

    def on_test_stop(self, environment, **_kw) -> None:
        run = current(environment) if environment is self.environment else None
        if run is None or run.state != "running":
            return
        run.ended_at = time.time()
        if not _is_master(environment.runner):
            end_run(environment, run)
            return
        import gevent

        run.state = "ending"
        write_results(environment, run)  # something on disk now, even if the process dies
        gevent.spawn(self.settle, environment, run, time.monotonic())

    def settle(self, environment, run: Run, stopped_at: float) -> None:
        """Wait until each connected worker reported after the stop (it sends its last stats then)."""
        import gevent
        from locust.runners import STATE_MISSING, WORKER_REPORT_INTERVAL

        deadline = stopped_at + 2 * WORKER_REPORT_INTERVAL + 1
        while time.monotonic() < deadline:
            waiting = [
                c.id
                for c in environment.runner.clients.values()
                if c.state != STATE_MISSING and self.last_report.get(c.id, 0) <= stopped_at
            ]
            if not waiting:
                break
            gevent.sleep(0.2)
        if current(environment) is run:
            end_run(environment, run)

    def on_quitting(self, environment, **_kw) -> None:
        run = current(environment) if environment is self.environment else None
        if run is not None and run.state != "running":
            run.state = "ending"  # the quit brought the workers' final reports: write again
            end_run(environment, run)

    def watch_workers(self, environment) -> None:
        """Record workers that stop sending heartbeats while a run is going (Locust has no event for it)."""
        import gevent
        from locust.runners import HEARTBEAT_INTERVAL, STATE_MISSING

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
    events.worker_report.add_listener(lifecycle.on_worker_report)
    events.quitting.add_listener(lifecycle.on_quitting)
