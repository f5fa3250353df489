"""A run's results written during the run, not only at its end.

A master that dies mid-run (an OOM kill, `docker kill`, a lost machine) never reaches the end of
the run, where its results are written. So every `--lab-checkpoint-seconds` of a running run (at
its start plus 1, 2, ... intervals) the master freezes its figures as they are then and writes them
through the same writer as the end of the run (lab.plugin.runs.write_results): Locust's CSVs and HTML
report and run.json, each replaced atomically, with run.json marked `"partial": true`. A crashed run keeps figures at
most one interval old; its normal end replaces them all. After a restart the master starts new
runs in new folders, so a crashed run's folder stays as it was.
"""

from __future__ import annotations

import logging
import time

import gevent
from locust.runners import LocalRunner, MasterRunner

from lab.core.errors import LabError
from lab.plugin import runs
from lab.plugin.trim import seconds_or_off

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_SECONDS = 60
MIN_CHECKPOINT_SECONDS = 10  # the CSVs and the HTML report cost the master a moment to write
POLL_SECONDS = 1.0


# The --lab-checkpoint-seconds value: 0 (off) or at least MIN_CHECKPOINT_SECONDS.
checkpoint_seconds = seconds_or_off(MIN_CHECKPOINT_SECONDS)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--lab-checkpoint-seconds",
        type=checkpoint_seconds,
        default=DEFAULT_CHECKPOINT_SECONDS,
        env_var="LOCUST_LAB_CHECKPOINT_SECONDS",
        include_in_web_ui=False,
        help="Seconds between the results a running run writes to its folder, marked partial, so that a "
        f"master that dies keeps them (default {DEFAULT_CHECKPOINT_SECONDS}; 0 writes them only at the end)",
    )


def due(started_at: float, written: int, seconds: int, now: float) -> int:
    """How many checkpoints of a run started at `started_at` are due at `now` (`written` so far: 0 if none)."""
    count = int((now - started_at) // seconds)
    return count if count > written else 0


def checkpoint_forever(environment, seconds: int) -> None:
    written: dict[str, int] = {}  # run id -> checkpoints written
    while True:
        gevent.sleep(POLL_SECONDS)
        run = runs.current(environment)
        if run is None or run.state != "running":
            continue
        count = due(run.started_at, written.get(run.run_id, 0), seconds, time.time())
        if not count:
            continue
        written = {run.run_id: count}
        try:
            runs.write_results(environment, run, runs.Figures.freeze(environment.runner, time.time()))
        except LabError as exc:  # a full or read-only disk: the run goes on, Prometheus still records it
            logger.error("lab: could not write the checkpoint of run %s: %s", run.run_id, exc)


def on_init(environment, runner=None, **_kw) -> None:
    options = environment.parsed_options
    if options is None or not isinstance(runner, MasterRunner | LocalRunner):
        return
    seconds = options.lab_checkpoint_seconds
    if seconds:
        # In the runner's greenlet group, so that it ends with the runner.
        runner.greenlet.spawn(checkpoint_forever, environment, seconds)


def register(events) -> None:
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(on_init)
