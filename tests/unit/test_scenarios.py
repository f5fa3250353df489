"""The scenarios file: defaults, validation with line numbers, overrides; and `lab run`'s checks of
its arguments, which fail before anything is sent to the master."""

import re
from argparse import Namespace
from pathlib import Path

import pytest

from lab.cli import main
from lab.core import scenarios
from lab.core.yamlconf import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "locust" / "scenarios.yaml"


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "scenarios.yaml"
    path.write_text(text)
    return path


def test_the_shipped_file_defines_every_scenario():
    loaded = scenarios.load(SHIPPED)
    assert set(loaded) == set(scenarios.SCENARIOS)
    assert loaded["soak"]["params"]["duration"] == 4 * 3600
    assert loaded["baseline"]["description"]


def test_defaults_fill_what_a_scenario_leaves_out(tmp_path):
    path = write(
        tmp_path,
        "defaults:\n  spawn_rate: 7\nscenarios:\n  stress:\n    users: 50\n    steps: 2\n"
        "    step_duration: 30s\n    duration: 1m\n  spike:\n    users: 5\n    spike_users: 9\n"
        "    warmup: 1\n    surge: 2\n    recovery: 3\n    spawn_rate: 100\n",
    )
    loaded = scenarios.load(path)
    assert loaded["stress"]["params"]["spawn_rate"] == 7.0
    assert loaded["spike"]["params"]["spawn_rate"] == 100.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "scenarios:\n  nosuch:\n    users: 1\n",
            "scenarios.yaml:2: unknown scenario 'nosuch' (valid: baseline,",
        ),
        (
            "scenarios:\n  baseline:\n    users: 5\n    ramp: 1s\n    duration: 1m\n    user: 3\n",
            "scenarios.yaml:6: scenario 'baseline': unknown key 'user'",
        ),
        (
            "scenarios:\n  baseline:\n    users: five\n    ramp: 1s\n    duration: 1m\n",
            "scenarios.yaml:3: scenario 'baseline': users:",
        ),
        (
            "scenarios:\n  baseline:\n    users: 5\n    ramp: 1s\n    duration: 1 minute\n",
            "scenarios.yaml:5: scenario 'baseline': duration: '1 minute' is not a duration",
        ),
        (
            "scenarios:\n  baseline:\n    users: 5\n    ramp: 1s\n",
            "scenarios.yaml:3: scenario 'baseline' is missing 'duration'",
        ),
        ("defaults:\n  speed: 1\nscenarios: {}\n", "scenarios.yaml:2: unknown default 'speed'"),
        ("runs: {}\n", "scenarios.yaml:1: unknown key 'runs'"),
        (
            "scenarios:\n  capacity:\n    start_users: 1\n    step_users: 1\n    users: 5\n    step_duration: 10s\n"
            "    ramp: 10s\n    min_growth: 0.2\n    spawn_rate: 1\n",
            "scenarios.yaml:2: capacity: ramp must be shorter than step_duration",
        ),
        (
            "scenarios:\n  mixed:\n    users: 5\n    ramp: 1s\n    duration: 1m\n    phases: [a, b]\n",
            "scenarios.yaml:6: scenario 'mixed': phases:",
        ),
        (
            "scenarios:\n  mixed:\n    users: 5\n    ramp: 1s\n    duration: 1m\n    phases:\n      a: [A, B]\n"
            "      b: [A]\n",
            "scenarios.yaml:2: mixed: phase 'b' must keep the classes of the phase before it",
        ),
    ],
)
def test_a_bad_file_names_the_line_and_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        scenarios.load(write(tmp_path, text))
    assert str(caught.value).startswith(str(tmp_path / message)), str(caught.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (30, 30.0),
        ("45", 45.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("0.5h", 1800.0),
    ],
)
def test_durations(text, seconds):
    assert scenarios.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "m5", "-3", True])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        scenarios.parse_duration(text)


def test_overrides_replace_the_files_values(tmp_path):
    options = Namespace(scenarios_file=str(SHIPPED), scenario_params="users=7, duration=90s")
    params = scenarios.resolve(options, "baseline")
    assert (params["users"], params["duration"], params["ramp"]) == (7, 90.0, 30.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users", "expected key=value"),
        ("phases=x", "has no parameter 'phases'"),
        (
            "step_users=3",
            "scenario 'baseline' has no parameter 'step_users' (its parameters: users, ramp, duration)",
        ),
        ("users=0", "users: '0' must be at least 1"),
    ],
)
def test_bad_overrides(text, message):
    name = "mixed" if text.startswith("phases") else "baseline"
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        scenarios.parse_overrides(name, text)


def test_overrides_are_checked_together_with_the_file():
    options = Namespace(scenarios_file=str(SHIPPED), scenario_params="ramp=5m")
    with pytest.raises(ConfigError, match="ramp must be shorter than step_duration"):
        scenarios.resolve(options, "capacity")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("ramp=2m", "rate-capacity: ramp must be shorter than step_duration"),
        ("start_rate=500", "rate-capacity: start_rate must not exceed rate (the maximum)"),
        ("tolerance=1", "rate-capacity: tolerance must be under 1 (0.02 is 2%)"),
    ],
)
def test_a_rate_capacity_search_checks_its_parameters_together(params, message):
    options = Namespace(scenarios_file=str(SHIPPED), scenario_params=params)
    with pytest.raises(ConfigError, match=re.escape(message)):
        scenarios.resolve(options, "rate-capacity")


def test_the_rate_scenarios_shapes_are_named_for_the_class_picker():
    assert [scenarios.shape_class_name(s) for s in ("capacity", "rate", "rate-capacity", "rate-soak")] == [
        "Capacity",
        "Rate",
        "RateCapacity",
        "RateSoak",
    ]


def test_lab_run_lists_the_valid_scenarios_for_an_unknown_one(capsys):
    assert main(["run", "nosuch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "lab: error: unknown scenario 'nosuch': valid scenarios are baseline, stress, spike, soak, capacity, mixed, rate, rate-stress, rate-spike, rate-soak, rate-capacity"
    )


def test_lab_run_rejects_a_parameter_the_scenario_lacks(capsys):
    assert main(["run", "capacity", "--duration", "5m"]) == 2
    assert "scenario 'capacity' has no parameter 'duration'" in capsys.readouterr().err


def test_lab_run_states_a_rate_capacity_in_arrivals_and_requests_per_second_and_why_it_stopped():
    from lab.cli.run import rate_capacity_line

    steps = [
        {"offered_rate": 15.0, "achieved_rate": 15.0, "arrivals": 120, "dropped": 0, "passed": True, "short": None},
        {"offered_rate": 30.0, "achieved_rate": 30.0, "arrivals": 270, "dropped": 0, "passed": True, "short": None},
        {"offered_rate": 45.0, "achieved_rate": 39.0, "arrivals": 405, "dropped": 51, "passed": False,
         "short": "dropped", "breached": []},
    ]  # fmt: skip
    capacity = {"rate": 30.0, "requests_per_second": 30.04, "reason": "dropped", "steps": steps}
    assert rate_capacity_line(capacity) == (
        "capacity: 30 arrivals/s offered, 30.0 requests/s achieved "
        "(search ended by dropped: at 45 arrivals/s it dropped 51 of 405, 3 steps)"
    )
    breached = {**steps[1], "passed": False, "breached": ["catalog-p95"]}
    assert rate_capacity_line(
        {"rate": None, "requests_per_second": None, "reason": "breach", "steps": [breached]}
    ) == (
        "capacity: none, even the first step fell short or breached the SLOs "
        "(breach: at 30 arrivals/s it breached catalog-p95)"
    )
    assert rate_capacity_line({**capacity, "reason": "max_rate", "steps": steps[:2]}).endswith(
        "(search ended by max_rate, 2 steps)"
    )
