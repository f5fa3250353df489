"""Tick sequences of the scenarios' load shapes (their plans), fed with time."""

from pathlib import Path

import pytest

from lab.core import plans, scenarios

SHIPPED = Path(__file__).resolve().parents[2] / "locust" / "scenarios.yaml"


def ticks(plan, times):
    return [None if (t := plan.at(s)) is None else (t.users, round(t.spawn_rate, 3), t.stage) for s in times]


def test_baseline_ramps_holds_and_ends():
    plan = plans.baseline_plan({"users": 20, "ramp": 10.0, "duration": 60.0})
    assert ticks(plan, [0, 9.9, 10, 69.9, 70]) == [
        (20, 2.0, "ramp"),
        (20, 2.0, "ramp"),
        (20, 2.0, "steady"),
        (20, 2.0, "steady"),
        None,
    ]


def test_baseline_without_ramp_starts_everyone_at_once():
    plan = plans.baseline_plan({"users": 20, "ramp": 0.0, "duration": 5.0})
    assert ticks(plan, [0, 5]) == [(20, 20.0, "steady"), None]


def test_soak_holds_for_hours():
    plan = plans.soak_plan({"users": 30, "ramp": 120.0, "duration": 4 * 3600.0})
    assert ticks(plan, [60, 120, 4 * 3600 + 119, 4 * 3600 + 120]) == [
        (30, 0.25, "ramp"),
        (30, 0.25, "steady"),
        (30, 0.25, "steady"),
        None,
    ]


def test_stress_climbs_in_equal_steps_then_holds_the_peak():
    plan = plans.stress_plan(
        {"users": 100, "steps": 4, "step_duration": 10.0, "duration": 30.0, "spawn_rate": 5.0}
    )
    assert [t[0] if t else None for t in ticks(plan, [0, 10, 20, 30, 40, 69.9, 70])] == [
        25,
        50,
        75,
        100,
        100,
        100,
        None,
    ]
    assert [plan.at(s).stage for s in (0, 39.9, 40)] == ["ramp", "ramp", "peak"]


def test_spike_surges_and_recovers():
    plan = plans.spike_plan(
        {"users": 10, "spike_users": 100, "warmup": 20.0, "surge": 5.0, "recovery": 30.0, "spawn_rate": 50.0}
    )
    assert ticks(plan, [0, 19.9, 20, 24.9, 25, 54.9, 55]) == [
        (10, 50.0, "warmup"),
        (10, 50.0, "warmup"),
        (100, 50.0, "surge"),
        (100, 50.0, "surge"),
        (10, 50.0, "recovery"),
        (10, 50.0, "recovery"),
        None,
    ]


def test_capacity_steps_up_to_the_maximum_with_ramp_and_steady_parts():
    plan = plans.CapacityPlan(
        {
            "start_users": 10,
            "step_users": 30,
            "users": 100,
            "step_duration": 20.0,
            "ramp": 5.0,
            "min_growth": 0.25,
            "spawn_rate": 10.0,
        }
    )
    assert plan.users == [10, 40, 70, 100]  # the last step is the maximum, even off the grid
    seen = [(t.users, t.stage, t.step) for t in map(plan.at, [0, 4.9, 5, 19.9, 20, 25, 60, 79.9])]
    assert seen == [
        (10, "ramp", 0),
        (10, "ramp", 0),
        (10, "steady", 0),
        (10, "steady", 0),
        (40, "ramp", 1),
        (40, "steady", 1),
        (100, "ramp", 3),
        (100, "steady", 3),
    ]
    assert plan.at(80) is None
    assert plan.duration == 80


def test_mixed_builds_the_workload_up_class_by_class_by_weight():
    phases = {"reads": ["Browser"], "auth": ["Browser", "Account"], "all": ["Browser", "Account", "Shopper"]}
    weights = {"Browser": 6, "Account": 3, "Shopper": 1}
    plan = plans.mixed_plan({"users": 30, "ramp": 10.0, "duration": 20.0, "phases": phases}, weights)
    seen = [(t.users, t.stage, t.user_classes) for t in map(plan.at, [0, 10, 29.9, 30, 50, 69.9])]
    assert seen == [
        (18, "ramp", ("Browser",)),
        (18, "reads", ("Browser",)),
        (18, "reads", ("Browser",)),
        (27, "auth", ("Account",)),  # the 9 users added are account users
        (30, "all", ("Shopper",)),
        (30, "all", ("Shopper",)),
    ]
    assert plan.at(70) is None
    assert plan.at(0).spawn_rate == 3.0


@pytest.mark.parametrize("name", scenarios.SCENARIOS)
def test_shipped_scenarios_end_by_themselves(name):
    params = scenarios.load(SHIPPED)[name]["params"]
    weights = {"CatalogBrowser": 6, "AccountUser": 3, "Shopper": 1}  # as in locust/locustfile.py
    plan = plans.PLANS[name](params, weights) if name == "mixed" else plans.PLANS[name](params)
    assert plan.at(0) is not None
    assert plan.at(plan.duration) is None


def test_rate_stress_climbs_in_equal_rate_steps_with_the_pool_kept():
    plan = plans.PLANS["rate-stress"](
        {"rate": 100.0, "users": 40, "steps": 4, "step_duration": 10.0, "duration": 20.0, "max_delay": 1.0}
    )
    assert plan.duration == 60.0
    assert [plan.at(t).rate for t in (0, 10, 20, 30, 45)] == [25.0, 50.0, 75.0, 100.0, 100.0]
    assert [plan.at(t).stage for t in (0, 39.9, 40)] == ["ramp", "ramp", "peak"]
    assert {plan.at(t).users for t in (0, 30, 59)} == {40} and plan.at(60) is None


def test_rate_spike_surges_the_rate_and_recovers():
    plan = plans.PLANS["rate-spike"](
        {
            "rate": 10.0,
            "spike_rate": 80.0,
            "users": 30,
            "warmup": 5.0,
            "surge": 3.0,
            "recovery": 7.0,
            "max_delay": 1.0,
        }
    )
    assert [(plan.at(t).rate, plan.at(t).stage) for t in (0, 5, 7.9, 8)] == [
        (10.0, "warmup"),
        (80.0, "surge"),
        (80.0, "surge"),
        (10.0, "recovery"),
    ]
    assert plan.at(15) is None


def test_rate_capacity_steps_the_offered_rate_up_to_the_maximum():
    params = {
        "start_rate": 10.0,
        "step_rate": 15.0,
        "rate": 50.0,
        "users": 20,
        "step_duration": 20.0,
        "ramp": 5.0,
        "max_delay": 1.0,
        "tolerance": 0.02,
    }
    plan = plans.PLANS["rate-capacity"](params)
    assert plan.rates == [10.0, 25.0, 40.0, 50.0]  # the last step is the maximum
    assert plan.duration == 80.0
    tick = plan.at(24.0)
    assert (tick.rate, tick.step, tick.stage, tick.users) == (25.0, 1, "ramp", 20)
    assert plan.at(25.0).stage == "steady" and plan.at(80.0) is None
    assert plans.PLANS["rate-capacity"]({**params, "step_rate": 20.0, "rate": 50.0}).rates == [
        10.0,
        30.0,
        50.0,
    ]
