"""The report's computations on fixed data: histogram percentiles, slopes, knee, regression flags."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.report import analysis

INF = math.inf
# {le: cumulative count}: 10 requests up to 100 ms, 50 more up to 500 ms, 40 more up to 1 s.
BUCKETS = {0.1: 10.0, 0.5: 60.0, 1.0: 100.0, INF: 100.0}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.05, 0.05),  # rank 5 of 10 in the first bucket, which starts at 0
        (0.5, 0.1 + 0.4 * 40 / 50),  # rank 50: 40 of the 50 in (0.1, 0.5]
        (0.99, 0.5 + 0.5 * 39 / 40),
        (1.0, 1.0),
    ],
)
def test_histogram_quantile_interpolates_inside_the_bucket(q, expected):
    assert analysis.histogram_quantile(q, BUCKETS) == pytest.approx(expected)


def test_rank_in_the_inf_bucket_gives_the_highest_finite_bound():
    assert analysis.histogram_quantile(0.9, {0.1: 10.0, 0.25: 12.0, INF: 20.0}) == 0.25


def test_no_observations_or_no_inf_bucket_has_no_quantile():
    assert analysis.histogram_quantile(0.95, {0.1: 0.0, INF: 0.0}) is None
    assert analysis.histogram_quantile(0.95, {0.1: 3.0, 0.5: 4.0}) is None
    assert analysis.histogram_quantile(0.95, {}) is None


def test_counts_that_go_down_are_made_monotonic_like_prometheus_does():
    # 0.5 was sampled a moment before 0.1: it counts as 10, not 8, so (0.5, 1] holds 10 of the 20.
    buckets = {0.1: 10.0, 0.5: 8.0, 1.0: 20.0, INF: 20.0}
    assert analysis.histogram_quantile(0.6, buckets) == pytest.approx(0.5 + 0.5 * 2 / 10)


def test_quantile_outside_0_1_is_refused():
    with pytest.raises(ValueError):
        analysis.histogram_quantile(1.5, BUCKETS)


@given(
    st.lists(st.integers(min_value=0, max_value=1000), min_size=3, max_size=3),
    st.floats(min_value=0, max_value=1),
    st.floats(min_value=0, max_value=1),
)
def test_quantiles_are_ordered_and_inside_the_bucket_range(per_bucket, q1, q2):
    counts = [sum(per_bucket[: i + 1]) for i in range(3)]
    buckets = {0.01: float(counts[0]), 0.1: float(counts[1]), INF: float(counts[2])}
    low, high = (
        analysis.histogram_quantile(min(q1, q2), buckets),
        analysis.histogram_quantile(max(q1, q2), buckets),
    )
    if counts[-1] == 0:
        assert low is None and high is None
    else:
        assert 0 <= low <= high <= 0.1


def test_bucket_bounds_of_a_value():
    bounds = [0.1, 0.5, 1.0, INF]
    assert analysis.bucket_bounds(0.42, bounds) == (0.1, 0.5)
    assert analysis.bucket_bounds(0.1, bounds) == (0.0, 0.1)
    assert analysis.bucket_bounds(7.0, [0.1, 0.5]) == (0.5, INF)


# A Prometheus instant-query result, as /api/v1/query returns it.
VECTOR = [
    {"metric": {"method": "GET", "name": "/items", "le": le}, "value": [1700000000.0, value]}
    for le, value in (("0.1", "10"), ("0.5", "60"), ("1.0", "100"), ("+Inf", "100"))
] + [
    {"metric": {"method": "POST", "name": "/login", "le": le}, "value": [1700000000.0, value]}
    for le, value in (("0.1", "0"), ("0.5", "4"), ("1.0", "4"), ("+Inf", "5"))
]


def test_group_buckets_by_endpoint():
    grouped = analysis.group_buckets(VECTOR, ("method", "name"))
    assert grouped[("GET", "/items")] == BUCKETS
    assert grouped[("POST", "/login")] == {0.1: 0.0, 0.5: 4.0, 1.0: 4.0, INF: 5.0}
    assert analysis.group_buckets(VECTOR) == {(): {0.1: 0.0, 0.5: 4.0, 1.0: 4.0, INF: 5.0}}  # last wins


def test_quantiles_over_time_from_a_matrix_of_bucket_rates():
    matrix = [
        {"metric": {"le": "0.1"}, "values": [[100, "1"], [105, "0"]]},
        {"metric": {"le": "0.5"}, "values": [[100, "2"], [105, "0"]]},
        {"metric": {"le": "+Inf"}, "values": [[100, "2"], [105, "0"]]},
    ]
    result = analysis.bucket_series_quantiles(matrix, (0.5, 0.95))
    assert result[0.5] == [(100.0, pytest.approx(0.1)), (105.0, None)]  # no requests at 105: no value
    assert result[0.95][0][1] == pytest.approx(0.1 + 0.4 * 0.9)


MIB = 2**20
LIMIT = 50 * MIB  # the default soak limit of the API's memory, per hour


def noise(i: int) -> float:
    """Deterministic scrape-to-scrape jitter of about +-0.3 MiB."""
    return ((i * 7919) % 61 - 30) / 100 * MIB


def issue_soak() -> list[tuple[float, float]]:
    """The API's resident memory in an 87-minute soak of the demo stack, synthesized from the recorded
    figures (5 s scrapes): 80 MiB, a step of 19 MiB at minute 6 and another at minute 36, then flat
    for the last 51 minutes. A least-squares line calls this about +24 MiB/h."""
    return [
        (t, 80 * MIB + 19 * MIB * (t >= 6 * 60) + 19 * MIB * (t >= 36 * 60) + noise(i))
        for i, t in enumerate(range(0, 87 * 60, 5))
    ]


def test_a_series_that_steps_up_then_stays_flat_has_no_drift_and_a_plateau():
    points = issue_soak()
    found = analysis.drift(points, 60.0, 87 * 60.0)  # the steady part starts after a minute of ramp
    assert abs(found["per_hour"]) < 1 * MIB
    assert found["plateau"]["level"] == pytest.approx(118 * MIB, abs=0.5 * MIB)
    assert 36 * 60 <= found["plateau"]["since"] <= 37 * 60
    # A single step inside the middle third, as in the recorded soak, reads the same.
    step = [(t, 100.0 + 50.0 * (t >= 1000)) for t in range(0, 3600, 5)]
    assert analysis.drift(step, 0, 3600)["per_hour"] == 0.0


@pytest.mark.parametrize("rate", [LIMIT, 2 * LIMIT])
def test_a_series_that_keeps_growing_drifts_at_its_rate(rate):
    points = [(t, 80 * MIB + rate * t / 3600 + noise(i)) for i, t in enumerate(range(0, 87 * 60, 5))]
    found = analysis.drift(points, 60.0, 87 * 60.0)
    assert found["per_hour"] == pytest.approx(rate, rel=0.03)
    assert found["plateau"] is None


def test_a_step_late_in_the_run_is_drift_and_outliers_are_not():
    late = [(t, 100.0 + 50.0 * (t >= 3000)) for t in range(0, 3600, 5)]
    # Half the last third up by 50: the last third's median is 25 higher, over 1200 s.
    assert analysis.drift(late, 0, 3600)["per_hour"] == pytest.approx(25.0 * 3)
    spikes = [(t, 100.0 + (500.0 if t % 600 == 0 else 0.0)) for t in range(0, 3600, 5)]
    assert analysis.drift(spikes, 0, 3600)["per_hour"] == 0.0


def test_drift_skips_missing_values_and_needs_two_in_each_third():
    points = [(0.0, 1.0), (1300.0, 2.0), (1400.0, None), (1500.0, 2.0), (2500.0, math.nan), (3000.0, 2.0)]
    assert analysis.drift(points, 0, 3600) is None
    points.append((3500.0, 2.0))
    assert analysis.drift(points, 0, 3600)["per_hour"] == 0.0


def test_steady_window_is_the_time_at_peak_users():
    users = [(0, 0), (5, 5), (10, 10), (15, 10), (20, 10), (25, 3)]
    assert analysis.steady_window(users) == (10, 20)
    assert analysis.steady_window([]) is None
    assert analysis.steady_window([(0, 0), (5, 0)]) is None


def step(users, rps):
    return {"users": users, "requests_per_second": rps}


def test_knee_is_the_last_step_before_throughput_stops_scaling():
    # 20 -> 30 users: 10 more users at 10 requests/s each would add 100; 50 is half, above 25 %.
    # 30 -> 40 users: at 250/30 requests/s per user they would add 83; 10 is under 25 % of that.
    steps = [step(10, 100), step(20, 200), step(30, 250), step(40, 260)]
    assert analysis.find_knee(steps, min_growth=0.25) == 2
    assert analysis.find_knee(steps, min_growth=0.6) == 1  # 50 of 100 is under 60 %
    assert analysis.find_knee(list(reversed(steps)), min_growth=0.25) == 1  # the index into the list given


def test_no_knee_while_throughput_still_scales():
    assert analysis.find_knee([step(10, 100), step(20, 190), step(40, 370)], 0.25) is None
    assert analysis.find_knee([step(10, 100)], 0.25) is None
    assert analysis.find_knee([step(10, 0), step(20, 0)], 0.25) is None


def test_counter_value_at_a_time_is_its_last_sample_before():
    points = [(100.0, 5.0), (105.0, 9.0), (110.0, 12.0)]
    assert analysis.value_at(points, 107.0) == 9.0
    assert analysis.value_at(points, 110.0) == 12.0
    assert analysis.value_at(points, 50.0) == 0.0  # before the run's first sample: nothing counted


def test_histogram_of_a_window_is_the_difference_of_cumulative_buckets():
    matrix = [
        {"metric": {"le": "0.1"}, "values": [[100, "10"], [110, "30"], [120, "40"]]},
        {"metric": {"le": "+Inf"}, "values": [[100, "10"], [110, "50"], [120, "70"]]},
    ]
    assert analysis.window_histogram(matrix, 100, 120) == {0.1: 30.0, INF: 60.0}
    assert analysis.window_histogram(matrix, 90, 110) == {0.1: 30.0, INF: 50.0}


FIGURES = {
    "overall": {"requests_per_second": 100.0, "p95_seconds": 0.2, "p99_seconds": 0.4, "error_ratio": 0.001},
    "GET /items": {"requests_per_second": 80.0, "p95_seconds": 0.1, "p99_seconds": 0.3, "error_ratio": 0.0},
    "POST /login": {
        "requests_per_second": 20.0,
        "p95_seconds": 0.003,
        "p99_seconds": 0.004,
        "error_ratio": 0.0,
    },
}


def flagged(rows):
    return {(r["endpoint"], r["metric"]) for r in rows if r["regression"]}


def test_a_run_against_itself_has_no_regression():
    rows = analysis.compare_figures(FIGURES, FIGURES)
    assert len(rows) == 12 and not flagged(rows)
    assert rows[0]["endpoint"] == "overall"
    assert all(r["change"] == 0 for r in rows)


def test_slower_fewer_and_failing_requests_are_flagged():
    after = {key: dict(value) for key, value in FIGURES.items()}
    after["overall"]["p95_seconds"] = 0.4  # +100 %, +200 ms
    after["GET /items"]["requests_per_second"] = 50.0  # -37.5 %
    after["GET /items"]["error_ratio"] = 0.02  # +2 percentage points
    after["POST /login"]["p99_seconds"] = 0.009  # +125 % but only +5 ms: noise at this latency
    after["overall"]["requests_per_second"] = 90.0  # -10 %: inside the 20 % threshold
    rows = analysis.compare_figures(FIGURES, after)
    assert flagged(rows) == {
        ("overall", "p95_seconds"),
        ("GET /items", "requests_per_second"),
        ("GET /items", "error_ratio"),
    }
    p95 = next(r for r in rows if (r["endpoint"], r["metric"]) == ("overall", "p95_seconds"))
    assert p95["change"] == pytest.approx(0.2) and p95["relative_change"] == pytest.approx(1.0)


def test_thresholds_are_parameters():
    after = {key: dict(value) for key, value in FIGURES.items()}
    after["overall"]["requests_per_second"] = 90.0
    assert flagged(analysis.compare_figures(FIGURES, after, threshold=0.05)) == {
        ("overall", "requests_per_second")
    }


def test_an_endpoint_in_one_run_only_is_shown_not_judged():
    after = {"overall": FIGURES["overall"], "GET /new": FIGURES["GET /items"]}
    rows = analysis.compare_figures(FIGURES, after)
    assert not flagged(rows)
    new = [r for r in rows if r["endpoint"] == "GET /new"]
    assert len(new) == 4 and all(r["before"] is None and r["change"] is None for r in new)


def test_intervals_follow_the_range_query_grid():
    assert analysis.intervals(100.0, 117.0, 5.0) == [(100.0, 105.0), (105.0, 110.0), (110.0, 115.0)]
    assert analysis.intervals(100.0, 103.0, 5.0) == []


def test_counter_rates_are_exact_differences_from_zero_at_the_start():
    points = [(105.0, 50.0), (110.0, 60.0)]  # no sample at 100: the run's counter had not appeared yet
    assert analysis.counter_rates(points, [(100.0, 105.0), (105.0, 110.0)]) == [(105.0, 10.0), (110.0, 2.0)]


def test_window_quantiles_per_interval():
    matrix = [
        {"metric": {"le": "0.1"}, "values": [[100, "0"], [105, "10"], [110, "10"]]},
        {"metric": {"le": "1"}, "values": [[100, "0"], [105, "10"], [110, "20"]]},
        {"metric": {"le": "+Inf"}, "values": [[100, "0"], [105, "10"], [110, "20"]]},
    ]
    result = analysis.window_quantiles(matrix, [(100, 105), (105, 110)], (0.5,))
    assert result[0.5] == [(105, pytest.approx(0.05)), (110, pytest.approx(0.55))]
