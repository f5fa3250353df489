"""The scenarios' specification: which parameters each scenario takes, `scenarios.yaml` (every
scenario's defaults) and the overrides of one run ("users=50,duration=2m"), validated with the file,
line and key to fix. Shared by the Locust plugin (lab.plugin.scenarios) and `lab run`."""

from pathlib import Path

from lab.core.yamlconf import ConfigError, LineDict, fail, located, parse_duration
from lab.core.yamlconf import load as load_yaml

DEFAULT_FILE = "scenarios.yaml"

# Kinds of parameter values; each scenario lists the parameters its shape reads.
INT, FLOAT, DURATION, PHASES = "int", "float", "duration", "phases"

# Ramps of a fixed length (ramp) spawn at users/ramp; steps and surges at spawn_rate.
SPECS: dict[str, dict[str, str]] = {
    "baseline": {"users": INT, "ramp": DURATION, "duration": DURATION},
    "stress": {
        "users": INT,
        "steps": INT,
        "step_duration": DURATION,
        "duration": DURATION,
        "spawn_rate": FLOAT,
    },
    "spike": {
        "users": INT,
        "spike_users": INT,
        "warmup": DURATION,
        "surge": DURATION,
        "recovery": DURATION,
        "spawn_rate": FLOAT,
    },
    "soak": {"users": INT, "ramp": DURATION, "duration": DURATION},
    "capacity": {
        "start_users": INT,
        "step_users": INT,
        "users": INT,
        "step_duration": DURATION,
        "ramp": DURATION,
        "min_growth": FLOAT,
        "spawn_rate": FLOAT,
    },
    "mixed": {"users": INT, "ramp": DURATION, "duration": DURATION, "phases": PHASES},
    # The open model: users is the pool serving the arrivals (lab.plugin.arrivals), max_delay how long
    # an arrival may wait for a free user before it is dropped.
    "rate": {"rate": FLOAT, "users": INT, "ramp": DURATION, "duration": DURATION, "max_delay": DURATION},
    # Their closed counterparts in arrivals per second (rate, spike_rate); users is the pool throughout.
    "rate-stress": {
        "rate": FLOAT,
        "users": INT,
        "steps": INT,
        "step_duration": DURATION,
        "duration": DURATION,
        "max_delay": DURATION,
    },
    "rate-spike": {
        "rate": FLOAT,
        "spike_rate": FLOAT,
        "users": INT,
        "warmup": DURATION,
        "surge": DURATION,
        "recovery": DURATION,
        "max_delay": DURATION,
    },
    "rate-soak": {"rate": FLOAT, "users": INT, "ramp": DURATION, "duration": DURATION, "max_delay": DURATION},
    # The rate search: tolerance is how far short of its offered rate a step may fall (dropped arrivals,
    # or fewer started), as a fraction.
    "rate-capacity": {
        "start_rate": FLOAT,
        "step_rate": FLOAT,
        "rate": FLOAT,
        "users": INT,
        "step_duration": DURATION,
        "ramp": DURATION,
        "max_delay": DURATION,
        "tolerance": FLOAT,
    },
}
SCENARIOS = tuple(SPECS)


def shape_class_name(scenario: str) -> str:
    """The LoadTestShape class of a scenario in lab.plugin.shapes: the name the web UI's class picker
    shows (rate-capacity: RateCapacity)."""
    return "".join(part.capitalize() for part in scenario.split("-"))


def _convert(kind: str, value):
    """The value of a parameter of `kind`, from YAML or from an override string; ValueError if wrong."""
    if kind == INT:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{value!r} is not a whole number")
        number = int(value)
        if number < 1:
            raise ValueError(f"{value!r} must be at least 1")
        return number
    if kind == FLOAT:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        number = float(value)
        if number <= 0:
            raise ValueError(f"{value!r} must be above 0")
        return number
    if kind == DURATION:
        return parse_duration(value)
    if not isinstance(value, dict) or not value:
        raise ValueError("phases must be a mapping of phase name to a list of user class names")
    for name, classes in value.items():
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
            raise ValueError(f"phase {name!r} must list user class names")
    return {str(name): list(classes) for name, classes in value.items()}


def load(path: str | Path) -> dict[str, dict]:
    """The validated scenarios file: {scenario: {"description": str, "params": {name: value}}}.

    Raises ConfigError naming the file, line and key at the first problem."""
    source = str(path)
    data = load_yaml(path)
    if not isinstance(data, LineDict):
        fail(source, 1, "expected a mapping with 'defaults' and 'scenarios'")
    for key in data:
        if key not in ("defaults", "scenarios"):
            fail(source, data.key_lines[key], f"unknown key {key!r} (expected 'defaults' and 'scenarios')")
    defaults = data.get("defaults") or LineDict()
    if not isinstance(defaults, LineDict):
        fail(source, data.key_lines["defaults"], "'defaults' must be a mapping of parameter to value")
    known = set().union(*SPECS.values())
    for key in defaults:
        if key not in known:
            known_list = ", ".join(sorted(known))
            fail(source, defaults.key_lines[key], f"unknown default {key!r} (known: {known_list})")
    scenarios = data.get("scenarios")
    if not isinstance(scenarios, LineDict):
        line = data.key_lines.get("scenarios", 1)
        fail(source, line, "'scenarios' must be a mapping of scenario name to parameters")
    result = {}
    for name, body in scenarios.items():
        line = scenarios.key_lines[name]
        if name not in SPECS:
            fail(source, line, f"unknown scenario {name!r} (valid: {', '.join(SCENARIOS)})")
        if not isinstance(body, LineDict):
            fail(source, line, f"scenario {name!r} must be a mapping of parameter to value")
        spec = SPECS[name]
        params = {}
        for key in spec:
            if key in body:
                raw, key_line = body[key], body.key_lines[key]
            elif key in defaults:
                raw, key_line = defaults[key], defaults.key_lines[key]
            else:
                fail(source, body.line, f"scenario {name!r} is missing {key!r} (and there is no default)")
            try:
                params[key] = _convert(spec[key], raw)
            except (TypeError, ValueError) as exc:
                fail(source, key_line, f"scenario {name!r}: {key}: {exc}")
        for key in body:
            if key != "description" and key not in spec:
                fail(
                    source,
                    body.key_lines[key],
                    f"scenario {name!r}: unknown key {key!r} (its parameters: {', '.join(spec)})",
                )
        check(name, params, f"{source}:{line}")
        result[name] = {"description": str(body.get("description", "")).strip(), "params": params}
    return result


def check(name: str, params: dict, where: str) -> None:
    """Rules between parameters of one scenario."""
    if name == "mixed":
        running: list = []
        for phase, classes in params["phases"].items():
            if not set(running) <= set(classes):
                raise ConfigError(
                    f"{where}: mixed: phase {phase!r} must keep the classes of the phase before it"
                )
            running = classes
    if name == "capacity":
        if params["ramp"] >= params["step_duration"]:
            raise ConfigError(f"{where}: capacity: ramp must be shorter than step_duration")
        if params["start_users"] > params["users"]:
            raise ConfigError(f"{where}: capacity: start_users must not exceed users (the maximum)")
    if name == "rate-capacity":
        if params["ramp"] >= params["step_duration"]:
            raise ConfigError(f"{where}: rate-capacity: ramp must be shorter than step_duration")
        if params["start_rate"] > params["rate"]:
            raise ConfigError(f"{where}: rate-capacity: start_rate must not exceed rate (the maximum)")
        if params["tolerance"] >= 1:
            raise ConfigError(f"{where}: rate-capacity: tolerance must be under 1 (0.02 is 2%)")


def parse_overrides(name: str, text: str) -> dict:
    """Parameters from "key=value,key=value" for scenario `name` (the phases of `mixed` are file-only)."""
    spec = SPECS[name]
    result = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not value.strip():
            raise ConfigError(f"scenario override {item!r}: expected key=value")
        if key not in spec or spec[key] == PHASES:
            settable = [k for k, kind in spec.items() if kind != PHASES]
            raise ConfigError(
                f"scenario {name!r} has no parameter {key!r} (its parameters: {', '.join(settable)})"
            )
        try:
            result[key] = _convert(spec[key], value.strip())
        except ValueError as exc:
            raise ConfigError(f"scenario {name!r}: {key}: {exc}") from None
    return result


def resolve(options, name: str) -> dict:
    """The parameters of scenario `name` for this run: the file's, then the overrides in `options`
    (Locust's parsed options: --scenarios-file, --scenario-params)."""
    path = located(getattr(options, "scenarios_file", None), DEFAULT_FILE)
    if path is None:
        raise ConfigError(
            f"no scenarios file: pass --scenarios-file or put {DEFAULT_FILE} in the working directory"
        )
    scenarios = load(path)
    if name not in scenarios:
        raise ConfigError(f"{path}: scenario {name!r} is not defined; add it under 'scenarios'")
    overrides = parse_overrides(name, getattr(options, "scenario_params", "") or "")
    params = {**scenarios[name]["params"], **overrides}
    check(name, params, "overrides")
    return params
