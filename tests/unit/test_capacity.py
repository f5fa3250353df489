"""The capacity search's decisions on recorded stats sequences: one window per step, as the capacity
shape measures them (the steady part of each step)."""

import pytest

from lab.core import slo
from lab.core.capacity import BREACH, CONTINUE, KNEE, MAX_USERS, CapacitySearch
from lab.plugin.verdicts import window_between

OBJECTIVES = [
    slo.Objective("p95", "latency_p95", ("*",), "max", 0.25),
    slo.Objective("errors", "error_ratio", ("*",), "max", 0.01),
    slo.Objective("throughput", "throughput", ("*",), "min", 1000.0),  # a whole-run floor: not per step
]
STEP_SECONDS = 40.0


def window(rps: float, p95_ms: int, failures: int = 0) -> slo.Window:
    """A step's steady window: rps over STEP_SECONDS, 95% of requests at 10 ms, the slowest 5% at p95_ms."""
    total = round(rps * STEP_SECONDS)
    slow = total // 20
    histogram = {10: total - slow, p95_ms: slow} if p95_ms != 10 else {10: total}
    return window_between({}, {("GET", "/x"): (total, failures, histogram)}, STEP_SECONDS)


def search(steps: list[tuple[int, slo.Window]]) -> tuple[CapacitySearch, list[str]]:
    result = CapacitySearch(OBJECTIVES, min_growth=0.25)
    decisions = []
    for i, (users, step_window) in enumerate(steps):
        decisions.append(
            result.judge(users, step_window, started_at=i * 60.0, ended_at=i * 60.0 + STEP_SECONDS)
        )
        if decisions[-1] != CONTINUE:
            break
    return result, decisions


def test_a_clean_knee_stops_where_users_stop_buying_throughput():
    result, decisions = search(
        [
            (10, window(20, 50)),
            (20, window(40, 60)),
            (30, window(58, 80)),
            (40, window(61, 120)),
            (50, window(62, 400)),
        ]
    )
    assert decisions == [CONTINUE, CONTINUE, CONTINUE, KNEE]
    assert result.reason == KNEE
    capacity = result.to_dict()
    assert (capacity["users"], capacity["requests_per_second"]) == (40, 61.0)  # still within every SLO
    assert [s["users"] for s in capacity["steps"]] == [10, 20, 30, 40]
    assert all(s["passed"] for s in capacity["steps"])
    assert result.capacity_window is result.windows[3]


def test_a_breach_by_latency_stops_and_keeps_the_step_before():
    result, decisions = search([(10, window(20, 50)), (20, window(40, 120)), (30, window(59, 300))])
    assert decisions == [CONTINUE, CONTINUE, BREACH]
    capacity = result.to_dict()
    assert (capacity["users"], capacity["reason"]) == (20, BREACH)
    assert capacity["steps"][-1]["breached"] == ["p95"]
    assert capacity["steps"][-1]["passed"] is False


def test_a_breach_by_errors_stops_and_keeps_the_step_before():
    result, decisions = search(
        [(10, window(20, 50)), (20, window(40, 60, failures=2)), (30, window(60, 60, failures=48))]
    )
    assert decisions == [CONTINUE, CONTINUE, BREACH]
    assert result.to_dict()["users"] == 20
    assert result.steps[-1].breached == ["errors"]  # 48 / 2400 = 2%


def test_no_breach_before_the_maximum_gives_the_last_step():
    result, decisions = search([(10, window(20, 50)), (20, window(40, 60)), (30, window(60, 70))])
    assert decisions == [CONTINUE] * 3
    result.finish()
    capacity = result.to_dict()
    assert (capacity["users"], capacity["requests_per_second"], capacity["reason"]) == (30, 60.0, MAX_USERS)


def test_a_first_step_that_breaches_has_no_capacity():
    result, decisions = search([(10, window(20, 900))])
    assert decisions == [BREACH]
    assert result.capacity_window is None
    assert (result.to_dict()["users"], result.to_dict()["requests_per_second"]) == (None, None)


def test_throughput_floors_and_steps_without_data_do_not_stop_the_search():
    empty = window_between({}, {}, STEP_SECONDS)
    result, decisions = search([(10, empty), (20, window(40, 60))])
    assert decisions == [CONTINUE, CONTINUE]  # no requests yet: nothing breached, no rate to compare
    assert {v.objective for v in result.steps[1].verdicts} == {"p95", "errors"}


@pytest.mark.parametrize(("rps", "knee"), [(24.9, True), (25.1, False)])
def test_the_knee_is_growth_below_min_growth_of_the_expected_gain(rps, knee):
    # 10 users did 20 req/s; 10 more would add 20 at that rate: a gain under 25% of that (5) is the knee.
    result, decisions = search([(10, window(20, 50)), (20, window(rps, 50))])
    assert (decisions[-1] == KNEE) is knee
