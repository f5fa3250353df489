"""The SLO alert rules generated from the objectives: they select the requests the objective judges."""

import re

import pytest
import yaml

from lab.core import slo
from lab.dashboards import alerts

NAMES = [
    ("GET", "/api/v1/items"),
    ("GET", "/api/v1/items/[id]"),
    ("get", "/api/v1/items?page=2"),
    ("POST", "/api/v1/items"),
    ("POST", "/api/v1/orders"),
    ("GET", "/api/v1/auth/me"),
    ("GET", "/api/v1/item"),
    ("GET", "/a.b/c"),
    ("GET", "/axb/c"),
]
PATTERNS = [
    ("*",),
    ("GET /api/v1/items*",),
    ("/api/v1/orders*",),
    ("POST /api/v1/auth/login", "GET /api/v1/auth/me"),
    ("G?T /api/v1/item[s]",),
    ("/a.b/*",),
    ("[!P]* /api/v1/items",),
]


def promql_string(literal: str) -> str:
    """The value of a PromQL double-quoted string literal (the escapes the generator writes)."""
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def matched_by_rule(objective: slo.Objective, method: str, name: str) -> bool:
    """Whether one of the objective's label selectors matches, with RE2's full-match semantics."""
    for selector in alerts.selectors(objective):
        labels = dict(re.findall(r'(\w+)=~("(?:[^"\\]|\\.)*")', selector))
        values = {"method": method, "name": name}
        if all(re.fullmatch(promql_string(regex), values[label]) for label, regex in labels.items()):
            return True
    return False


@pytest.mark.parametrize("requests", PATTERNS, ids=[" | ".join(p) for p in PATTERNS])
def test_selectors_match_the_requests_the_objective_judges(requests):
    objective = slo.Objective("o", "latency_p95", requests, "max", 0.5)
    for method, name in NAMES:
        assert matched_by_rule(objective, method, name) == objective.matches(method, name), (method, name)


def test_a_latency_objective_reads_the_bucket_of_its_threshold_as_the_exporter_writes_it():
    for threshold, le in [(0.25, 'le="0.25"'), (1.0, 'le="1.0"'), (2.5, 'le="2.5"')]:
        objective = slo.Objective("o", "latency_p99", ("*",), "max", threshold)
        assert le in alerts.sli(objective, "5m")["expr"]


def test_only_objectives_with_a_budget_that_can_burn_get_alerts():
    objectives = [
        slo.Objective("median", "latency_p50", ("*",), "max", 0.1),
        slo.Objective("tail", "latency_p99", ("*",), "max", 1.0),
        slo.Objective("rate", "throughput", ("*",), "min", 5.0),
        slo.Objective("errors", "error_ratio", ("*",), "max", 0.001),
    ]
    rules = yaml.safe_load(alerts.render(objectives))
    fired = {
        (r["labels"]["objective"], r["labels"]["severity"])
        for g in rules["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    # p50's budget is half the requests: 14.4 or 6 times that is more than all of them.
    assert fired == {("tail", "page"), ("tail", "ticket"), ("errors", "page"), ("errors", "ticket")}
    recorded = {r["labels"]["objective"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    assert recorded == {"tail", "errors"}
