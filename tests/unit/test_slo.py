"""The SLO file's validation (good and bad files) and the judgement of objectives over stats windows."""

from pathlib import Path

import pytest

from lab.core import slo, yamlconf
from lab.core.yamlconf import ConfigError
from lab.plugin import verdicts
from lab.plugin.verdicts import window_between

SHIPPED = Path(__file__).resolve().parents[2] / "locust" / "slo.yaml"


def parse(text: str) -> list[slo.Objective]:
    return slo.parse(yamlconf.loads(text, "slo.yaml"), "slo.yaml")


def test_the_shipped_file_is_valid():
    objectives = {o.name: o for o in slo.load(SHIPPED)}
    assert {"catalog-p95", "errors", "throughput"} <= set(objectives)
    assert objectives["catalog-p95"].threshold == 0.25
    assert objectives["throughput"].bound == "min"


def test_a_good_file_with_every_metric_and_unit():
    objectives = parse(
        """
objectives:
  a: {metric: latency_p50, max: 100ms}
  b: {metric: latency_p99, max: 2, requests: "GET /x*"}
  c: {metric: latency_p90, max: 0.5s, requests: ["/a", "POST /b"]}
  d: {metric: error_ratio, max: 0.05}
  e: {metric: throughput, min: 12.5, description: floor}
"""
    )
    assert [(o.name, o.metric, o.bound, o.threshold) for o in objectives] == [
        ("a", "latency_p50", "max", 0.1),
        ("b", "latency_p99", "max", 2.0),
        ("c", "latency_p90", "max", 0.5),
        ("d", "error_ratio", "max", 0.05),
        ("e", "throughput", "min", 12.5),
    ]
    assert objectives[2].requests == ("/a", "POST /b")
    assert objectives[0].requests == ("*",)


def test_abort_after_is_a_duration_and_optional():
    objectives = parse(
        "objectives:\n  a: {metric: error_ratio, max: 0.1, abort_after: 2m}\n  b: {metric: error_ratio, max: 0.1}\n"
    )
    assert [o.abort_after for o in objectives] == [120.0, None]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "objectives:\n  a:\n    metric: latency_p95\n    maxx: 1\n",
            "slo.yaml:4: objective 'a': unknown key 'maxx'",
        ),
        (
            "objectives:\n  a:\n    metric: p95\n    max: 1\n",
            "slo.yaml:3: objective 'a': metric 'p95' is not one of",
        ),
        (
            "objectives:\n  a:\n    metric: latency_p95\n    max: fast\n",
            "slo.yaml:4: objective 'a': max 'fast' is not",
        ),
        (
            "objectives:\n  a:\n    metric: latency_p95\n    min: 1\n",
            "slo.yaml:4: objective 'a': latency_p95 takes 'max'",
        ),
        ("objectives:\n  a:\n    metric: error_ratio\n", "slo.yaml:3: objective 'a': missing 'max'"),
        (
            "objectives:\n  a:\n    metric: error_ratio\n    max: 5\n",
            "slo.yaml:4: objective 'a': max 5 is above 1",
        ),
        (
            "objectives:\n  a:\n    metric: throughput\n    min: -1\n",
            "slo.yaml:4: objective 'a': min -1 is not",
        ),
        (
            "objectives:\n  a:\n    metric: throughput\n    min: true\n",
            "slo.yaml:4: objective 'a': min True is not",
        ),
        (
            "objectives:\n  a:\n    metric: error_ratio\n    max: 0.1\n    requests: []\n",
            "slo.yaml:5: objective 'a': requests must be",
        ),
        ("objectives:\n  'a b': {metric: error_ratio, max: 0.1}\n", "slo.yaml:2: objective name 'a b'"),
        ("objectives: {}\n", "slo.yaml:1: 'objectives' must map"),
        ("targets: {}\n", "slo.yaml:1: unknown key 'targets'"),
        (
            "objectives:\n  a: {metric: error_ratio, max: 0.1}\nsoak:\n  slope: 1\n",
            "slo.yaml:4: soak: unknown key 'slope'",
        ),
        (
            "objectives:\n  a: {metric: error_ratio, max: 0.1}\n  a: {metric: error_ratio, max: 0.2}\n",
            "slo.yaml:3:",
        ),
        ("objectives:\n  a: [unclosed\n", "slo.yaml:3: invalid YAML"),
        (
            "objectives:\n  a:\n    metric: error_ratio\n    max: 0.1\n    abort_after: soon\n",
            "slo.yaml:5: objective 'a': abort_after 'soon' is not a duration above 0",
        ),
        (
            "objectives:\n  a:\n    metric: error_ratio\n    max: 0.1\n    abort_after: 0s\n",
            "slo.yaml:5: objective 'a': abort_after '0s' is not a duration above 0",
        ),
    ],
)
def test_a_bad_file_names_the_line_and_the_key(text, message):
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(ConfigError, match="cannot read it"):
        slo.load(tmp_path / "nope.yaml")


def test_request_patterns_match_names_and_methods():
    objective = slo.Objective("o", "error_ratio", ("GET /api/v1/items*", "/api/v1/orders*"), "max", 0.1)
    assert objective.matches("GET", "/api/v1/items/[id]")
    assert not objective.matches("POST", "/api/v1/items")
    assert objective.matches("POST", "/api/v1/orders")
    assert not objective.matches("GET", "/api/v1/auth/me")


def test_window_percentiles_are_locusts_own():
    # A run's whole window gives the percentiles Locust itself reports for the same requests.
    from locust.stats import RequestStats

    stats = RequestStats()
    for ms, count in {5: 50, 12: 30, 40: 15, 900: 4, 3000: 1}.items():
        for _ in range(count):
            stats.log_request("GET", "/a", ms, 0)
    window = window_between({}, verdicts.snapshot(stats), 10.0)
    entry = stats.get("/a", "GET")
    for metric, q in slo.QUANTILES.items():
        objective = slo.Objective(metric, metric, ("*",), "max", 1.0)
        assert slo.measure(objective, window) == (entry.get_response_time_percentile(q) / 1000, 100)


def snapshot(**entries):
    """{(method, name): (requests, failures, histogram)} from name=(requests, failures, histogram)."""
    return {("GET", "/" + name): value for name, value in entries.items()}


def test_a_window_is_the_difference_of_two_snapshots():
    before = snapshot(a=(10, 1, {10: 10}))
    after = snapshot(a=(30, 2, {10: 15, 200: 15}), b=(5, 0, {50: 5}))
    window = window_between(before, after, 10.0)
    assert window.requests == {("GET", "/a"): 20, ("GET", "/b"): 5}
    assert window.failures[("GET", "/a")] == 1
    assert window.response_times[("GET", "/a")] == {10: 5, 200: 15}
    assert window.describe() == {
        "duration_seconds": 10.0,
        "requests": 25,
        "failures": 1,
        "requests_per_second": 2.5,
    }


def test_verdicts_pass_fail_and_no_data():
    window = window_between({}, snapshot(a=(100, 3, {10: 90, 400: 10}), b=(100, 0, {20: 100})), 20.0)
    objectives = parse(
        """
objectives:
  a-p95: {metric: latency_p95, requests: /a, max: 250ms}
  b-p95: {metric: latency_p95, requests: /b, max: 250ms}
  c-p95: {metric: latency_p95, requests: /c, max: 250ms}
  errors: {metric: error_ratio, max: 0.01}
  throughput: {metric: throughput, min: 10}
  too-much: {metric: throughput, min: 11}
"""
    )
    verdicts = {v.objective: v for v in slo.evaluate(objectives, window)}
    assert (verdicts["a-p95"].passed, verdicts["a-p95"].value) == (False, 0.4)
    assert (verdicts["b-p95"].passed, verdicts["b-p95"].value) == (True, 0.02)
    assert verdicts["c-p95"].passed is None and verdicts["c-p95"].requests == 0
    assert (verdicts["errors"].passed, verdicts["errors"].value) == (False, 0.015)
    assert (verdicts["throughput"].passed, verdicts["throughput"].value) == (True, 10.0)
    assert verdicts["too-much"].passed is False
    assert "FAIL" in verdicts["a-p95"].describe() and "no data" in verdicts["c-p95"].describe()
    assert slo.Verdict(**verdicts["a-p95"].to_dict()) == verdicts["a-p95"]


def test_requests_per_second_counts_whole_seconds_by_request_time():
    per_second = {99: 50, 100: 10, 101: 20, 102: 30, 103: 1000}
    assert slo.requests_per_second(per_second, 99.5, 103.0) == 20.0  # seconds 100, 101, 102
    assert slo.requests_per_second(per_second, 100.0, 100.9) is None
    window = window_between({}, snapshot(a=(100, 0, {10: 100})), 10.0)
    assert window.describe()["requests_per_second"] == 10.0
    window.rate = 12.5
    assert window.describe()["requests_per_second"] == 12.5


def test_overrides_replace_thresholds_for_one_run():
    objectives = parse(
        "objectives:\n  p95: {metric: latency_p95, max: 250ms}\n  errors: {metric: error_ratio, max: 0.01}\n"
    )
    changed = {o.name: o.threshold for o in slo.with_overrides(objectives, "p95=1ms, errors=0")}
    assert changed == {"p95": 0.001, "errors": 0.0}
    assert slo.with_overrides(objectives, "") == objectives


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p99=1ms", "no objective 'p99' (objectives: p95, errors)"),
        ("p95", "expected objective=threshold"),
        ("errors=2", "'2' is not a valid error_ratio threshold"),
        ("p95=soon", "'soon' is not a valid latency_p95 threshold"),
    ],
)
def test_bad_overrides_name_the_problem(text, message):
    objectives = parse(
        "objectives:\n  p95: {metric: latency_p95, max: 250ms}\n  errors: {metric: error_ratio, max: 0.01}\n"
    )
    with pytest.raises(ConfigError) as caught:
        slo.with_overrides(objectives, text)
    assert message in str(caught.value)


def test_load_thresholds_gives_the_objectives_and_the_soak_limits_the_file_sets(tmp_path):
    repo = slo.load_thresholds(Path(__file__).resolve().parents[2] / "locust" / "slo.yaml")
    assert set(repo.soak) == set(slo.SOAK_KEYS) and {o.name for o in repo.objectives} >= {"errors"}
    path = tmp_path / "slo.yaml"
    path.write_text(
        "objectives:\n  errors: {metric: error_ratio, max: 0.02}\nsoak:\n  max_p95_slope_seconds_per_hour: 1\n"
    )
    thresholds = slo.load_thresholds(path)
    assert [(o.name, o.threshold) for o in thresholds.objectives] == [("errors", 0.02)]
    assert thresholds.soak == {"max_p95_slope_seconds_per_hour": 1.0}


def test_dropped_ratio_judges_the_arrivals_dropped_of_those_due():
    (objective,) = parse("objectives:\n  arrivals: {metric: dropped_ratio, max: 0.01}\n")
    window = slo.Window(duration=10.0, percentile=None, arrivals=500, dropped=10)
    verdict = slo.judge(objective, window)
    assert (verdict.passed, verdict.value, verdict.unit, verdict.requests) == (False, 0.02, "ratio", 500)
    assert (
        slo.judge(objective, slo.Window(duration=10.0, percentile=None)).passed is None
    )  # a closed run: nothing to judge
    with pytest.raises(ConfigError, match="max 2 is above 1 \\(dropped_ratio is a ratio"):
        parse("objectives:\n  a: {metric: dropped_ratio, max: 2}\n")
