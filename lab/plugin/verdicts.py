"""At the end of a test: judge the SLOs, log the verdicts, hand them to the Run (the exporter reads
them from there), write slo.json and capacity.json, and fail headless runs whose objectives failed."""

import json
import logging
import time
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_SLO_FILE = "slo.yaml"


def _add_arguments(parser) -> None:
    parser.add_argument(
        "--slo-file",
        env_var="LOCUST_SLO_FILE",
        default=DEFAULT_SLO_FILE,
        include_in_web_ui=False,
        help="Load Lab service level objectives (YAML); judged at the end of every run",
    )
    parser.add_argument(
        "--slo-overrides",
        env_var="LOCUST_SLO_OVERRIDES",
        default="",
        help="Load Lab SLO thresholds for this run, e.g. catalog-p95=100ms,errors=0.001 (empty: the SLO file's)",
    )


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _on_init(environment, **_kwargs) -> None:
    """Fail at start, not at the end of an hour-long run, when the SLO file is wrong."""
    import sys

    from locust.runners import WorkerRunner

    from lab.core import slo
    from lab.core.yamlconf import ConfigError

    options = environment.parsed_options
    if options is None or isinstance(environment.runner, WorkerRunner):
        return
    try:
        slo.objectives_of(options)
    except ConfigError as exc:
        logger.error("%s", exc)
        sys.exit(1)


def _on_test_stop(environment, **_kwargs) -> None:
    from locust.runners import WorkerRunner

    from lab.core import slo
    from lab.plugin import runs

    if isinstance(environment.runner, WorkerRunner):
        return
    from lab.core.yamlconf import ConfigError

    run = runs.current(environment)
    try:
        objectives = slo.objectives_of(environment.parsed_options) if environment.parsed_options else []
    except ConfigError as exc:  # e.g. overrides sent with the web UI form: no verdict without objectives
        logger.error("SLO not judged: %s", exc)
        environment.process_exit_code = 1
        if run is not None:
            _write_json(
                Path(run.results_dir) / "slo.json",
                {
                    "run_id": run.run_id,
                    "scenario": run.scenario,
                    "passed": False,
                    "failed": [],
                    "error": str(exc),
                },
            )
        return
    search = getattr(environment.shape_class, "search", None)
    capacity = None
    if search is not None and search.steps:
        # A capacity run is judged at its capacity step, the load it promises to carry (or at its
        # first step when even that breached).
        capacity = {**search.to_dict(), "reason": search.reason or "stopped"}
        window = search.capacity_window or search.windows[0]
    else:
        started = getattr(run, "started_at", None) or environment.stats.total.start_time
        window = slo.Window.between({}, slo.Window.snapshot(environment.stats), time.time() - started)
    verdicts = slo.evaluate(objectives, window)
    for verdict in verdicts:
        logger.info("SLO %s", verdict.describe())
    failed = [v.objective for v in verdicts if v.passed is False]
    if failed:
        logger.error("SLO failed: %s", ", ".join(failed))
        if environment.parsed_options and environment.parsed_options.headless:
            environment.process_exit_code = 1
    if run is None:
        return
    run.slo_verdicts = [v for v in verdicts if v.passed is not None]
    results_dir = Path(run.results_dir)
    _write_json(
        results_dir / "slo.json",
        {
            "run_id": run.run_id,
            "scenario": run.scenario,
            "passed": not failed,
            "failed": failed,
            "window": window.describe(),
            "objectives": [v.to_dict() for v in verdicts],
        },
    )
    if capacity is not None:
        run.capacity = capacity
        _write_json(results_dir / "capacity.json", {"run_id": run.run_id, **capacity})


def register(events) -> None:
    events.init_command_line_parser.add_listener(_add_arguments)
    events.init.add_listener(_on_init)
    events.test_stop.add_listener(_on_test_stop)
