"""The capacity search's decisions on recorded stats sequences: one window per step, as the capacity
shape measures them (the steady part of each step)."""

import pytest

from lab.core import slo
from lab.core.capacity import (
    BREACH,
    CONTINUE,
    DROPPED,
    KNEE,
    MAX_RATE,
    MAX_USERS,
    SHORTFALL,
    CapacitySearch,
    short_of,
)
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


# --- the rate search (rate-capacity): steps of offered arrivals/s, judged on carrying their rate ---------


def rate_window(rps: float, p95_ms: int, dropped: int = 0) -> slo.Window:
    """A rate step's steady window: as `window`, with rps arrivals due a second, `dropped` of them dropped;
    its latencies are the intended-start clock's (the shape puts them there)."""
    step_window = window(rps, p95_ms)
    step_window.arrivals, step_window.dropped = round(rps * STEP_SECONDS), dropped
    return step_window


def rate_search(steps: list[tuple[float, float, slo.Window]]) -> tuple[CapacitySearch, list[str]]:
    """steps: (offered arrivals/s, achieved (started) arrivals/s, window)."""
    result = CapacitySearch(OBJECTIVES, min_growth=0.0, tolerance=0.02)
    decisions = []
    for i, (offered, achieved, step_window) in enumerate(steps):
        decisions.append(
            result.judge(
                50,
                step_window,
                started_at=i * 60.0,
                ended_at=i * 60.0 + STEP_SECONDS,
                offered_rate=offered,
                achieved_rate=achieved,
            )
        )
        if decisions[-1] != CONTINUE:
            break
    return result, decisions


def test_a_rate_search_stops_at_the_first_step_that_drops_and_keeps_the_rate_before():
    result, decisions = rate_search(
        [
            (20.0, 20.0, rate_window(20, 50)),
            (40.0, 39.9, rate_window(40, 80)),
            (60.0, 45.0, rate_window(60, 200, dropped=600)),  # 600 of 2400 dropped
        ]
    )
    assert decisions == [CONTINUE, CONTINUE, DROPPED]
    capacity = result.to_dict()
    assert (capacity["rate"], capacity["requests_per_second"], capacity["reason"]) == (40.0, 40.0, DROPPED)
    assert capacity["users"] == 50  # the pool
    last = capacity["steps"][-1]
    assert (last["offered_rate"], last["achieved_rate"], last["arrivals"], last["dropped"]) == (
        60.0,
        45.0,
        2400,
        600,
    )
    assert last["short"] == DROPPED and last["passed"] is False and last["breached"] == []
    assert result.capacity_window is result.windows[1]


def test_a_rate_step_that_starts_fewer_arrivals_than_offered_falls_short():
    result, decisions = rate_search([(20.0, 20.0, rate_window(20, 50)), (40.0, 38.0, rate_window(40, 50))])
    assert decisions == [CONTINUE, SHORTFALL]  # 38 < 98% of 40, nothing dropped
    assert result.to_dict()["rate"] == 20.0


def test_a_rate_step_breaching_an_slo_stops_the_search_by_breach():
    result, decisions = rate_search([(20.0, 20.0, rate_window(20, 50)), (40.0, 40.0, rate_window(40, 400))])
    assert decisions == [CONTINUE, BREACH]
    assert result.steps[-1].breached == ["p95"] and result.steps[-1].short is None


def test_a_rate_search_without_a_step_falling_short_ends_at_its_maximum_rate():
    result, decisions = rate_search(
        [(20.0, 20.0, rate_window(20, 50)), (40.0, 39.5, rate_window(40, 60, dropped=16))]
    )
    assert decisions == [CONTINUE, CONTINUE]  # 16 of 1600 dropped and 39.5/s: within 2%
    result.finish()
    capacity = result.to_dict()
    assert (capacity["rate"], capacity["reason"], capacity["tolerance"]) == (40.0, MAX_RATE, 0.02)


def test_a_rate_search_whose_first_step_falls_short_has_no_capacity():
    result, decisions = rate_search([(20.0, 10.0, rate_window(20, 50, dropped=400))])
    assert decisions == [DROPPED]
    capacity = result.to_dict()
    assert (capacity["rate"], capacity["requests_per_second"], capacity["users"]) == (None, None, None)


def test_a_closed_search_writes_no_rate_fields():
    result, _ = search([(10, window(20, 50))])
    assert "rate" not in result.to_dict() and "offered_rate" not in result.to_dict()["steps"][0]


@pytest.mark.parametrize(
    ("achieved", "arrivals", "dropped", "short"),
    [
        (100.0, 1000, 20, None),  # 2% dropped: at the tolerance
        (100.0, 1000, 21, DROPPED),
        (98.0, 1000, 0, None),
        (97.9, 1000, 0, SHORTFALL),
        (50.0, 1000, 500, DROPPED),  # drops explain the shortfall: named first
        (0.0, 0, 0, SHORTFALL),  # nothing due or started at all
    ],
)
def test_short_of_the_offered_rate_is_beyond_the_tolerance(achieved, arrivals, dropped, short):
    assert short_of(100.0, achieved, arrivals, dropped, 0.02) == short
