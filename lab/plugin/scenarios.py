"""The lab's scenarios in Locust: options, the shapes offered to the class picker, `--scenario`.

Locust options added here (all also settable in locust.conf or as LOCUST_* environment variables):
  --scenario NAME           headless: the load shape to run (LOCUST_SCENARIO); the web UI has the class picker
  --scenarios-file PATH     the parameters file (default: scenarios.yaml in the working directory, when there is
                            one; without a file the lab's scenarios are off and the locustfile runs as it is)
  --scenario-params K=V,..  overrides, e.g. "users=50,duration=2m" (shown in the web UI form, and what
                            `lab run --users/--duration/--set` fills in)

The shapes (lab.plugin.shapes) are offered here, not through the locustfile's namespace: a locustfile
with its own LoadTestShape keeps running it unless --scenario names one of the lab's.
"""

import logging
import sys

from locust.runners import WorkerRunner

from lab.core.scenarios import DEFAULT_FILE, SCENARIOS, load, shape_class_name
from lab.core.yamlconf import ConfigError, located
from lab.plugin import runs
from lab.plugin.shapes import SHAPES, ScenarioShape

logger = logging.getLogger(__name__)


def active(environment) -> tuple[str, dict] | None:
    """(scenario, parameters) of the shape selected for the current test, or None without a lab shape."""
    shape = environment.shape_class
    if shape is None or not getattr(shape, "scenario", None) or getattr(shape, "params", None) is None:
        return None
    return shape.scenario, dict(shape.params)


def _add_arguments(parser) -> None:
    parser.add_argument(
        "--scenario",
        env_var="LOCUST_SCENARIO",
        default="",
        include_in_web_ui=False,
        help=f"Load Lab scenario to run headless: {', '.join(SCENARIOS)} (web UI: the class picker)",
    )
    parser.add_argument(
        "--scenarios-file",
        env_var="LOCUST_SCENARIOS_FILE",
        default="",
        include_in_web_ui=False,
        help=f"Load Lab scenario parameters (YAML; default {DEFAULT_FILE} when the working directory has one)",
    )
    parser.add_argument(
        "--scenario-params",
        env_var="LOCUST_SCENARIO_PARAMS",
        default="",
        help="Load Lab scenario overrides, e.g. users=50,duration=2m (empty: the scenarios file's values)",
    )


def offer_shapes(environment) -> dict[str, ScenarioShape]:
    """Add the lab's shapes to the class picker's list, by class name; a locustfile's own shape of the
    same name keeps its place (and that scenario is then not offered). Returns {scenario: shape}."""
    if environment.available_shape_classes is None:
        environment.available_shape_classes = {}
    available = environment.available_shape_classes
    offered = {}
    for scenario, cls in SHAPES.items():
        name = shape_class_name(scenario)
        if name not in available:
            available[name] = cls()
        if isinstance(available[name], cls):
            offered[scenario] = available[name]
        else:
            logger.warning("lab: the locustfile's own shape %s hides the lab's %s scenario", name, scenario)
    return offered


def select(environment, scenario: str, offered: dict[str, ScenarioShape]) -> None:
    """Run the lab's shape of `scenario` (--scenario), saying so when it replaces the locustfile's own."""
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r} (valid: {', '.join(SCENARIOS)})")
    if scenario not in offered:
        raise ConfigError(
            f"scenario {scenario!r}: the locustfile defines its own {shape_class_name(scenario)}"
        )
    own = environment.shape_class
    if own is not None and not isinstance(own, ScenarioShape):
        logger.warning(
            "lab: --scenario %s runs the lab's %s shape, not the locustfile's own %s",
            scenario,
            shape_class_name(scenario),
            type(own).__name__,
        )
    environment.shape_class = offered[scenario]
    environment.shape_class.runner = environment.runner


def _on_init(environment, **_kwargs) -> None:
    """Validate the scenarios file up front, offer the shapes and select the headless scenario's."""
    options = environment.parsed_options
    if options is None or isinstance(environment.runner, WorkerRunner):
        return
    try:
        path = located(options.scenarios_file, DEFAULT_FILE)
        if path is None:
            if options.scenario:
                raise ConfigError(
                    f"--scenario {options.scenario} needs the scenarios' parameters: "
                    f"pass --scenarios-file or put {DEFAULT_FILE} in the working directory"
                )
            logger.info("lab: no %s given or found: the lab's scenarios are off", DEFAULT_FILE)
            return
        load(path)
        offered = offer_shapes(environment)
        if options.scenario:
            select(environment, options.scenario, offered)
    except ConfigError as exc:
        logger.error("%s", exc)
        sys.exit(1)


def _on_test_start(environment, **_kwargs) -> None:
    """Record the parameters on the run (lab.plugin.runs writes them to run.json and scenario.yaml)."""
    run = runs.current(environment)
    selected = active(environment)
    if run is not None and selected is not None:
        name, params = selected
        run.parameters = {"scenario": name, **params}


def register(events) -> None:
    events.init_command_line_parser.add_listener(_add_arguments)
    events.init.add_listener(_on_init)
    events.test_start.add_listener(_on_test_start)
