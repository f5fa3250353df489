"""Prometheus rules: valid for promtool, their unit tests pass, and those tests catch a broken rule.

The promtool tests are integration tests: promtool runs from the lab's Prometheus image.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lab import dashboards
from lab.core import slo
from tests.support import local_services

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "prometheus" / "rules"
RULE_FILES = [RULES / "recording.yml", RULES / "slo.yml"]
UNIT_TESTS = sorted((RULES / "tests").glob("*.yml"))


def promtool(*args: str | Path, rules: Path = RULES) -> subprocess.CompletedProcess:
    """promtool from the Prometheus image, with `rules` copied in as rules/ (paths under it name those)."""
    names = [f"rules/{a.relative_to(rules).as_posix()}" if isinstance(a, Path) else a for a in args]
    return local_services.promtool(*names, files={"rules": rules})


def rules(path: Path) -> list[dict]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


@pytest.mark.integration
def test_promtool_check_rules_passes():
    result = promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.integration
def test_promtool_test_rules_passes():
    assert UNIT_TESTS
    result = promtool("test", "rules", *UNIT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("rule_file", "old", "new"),
    [
        pytest.param(
            "slo.yml",
            'ratio_rate5m{objective="errors"} > (14.4 * 0.01)',
            "ratio_rate5m > (0.5)",
            id="fast-errors",
        ),
        pytest.param(
            "slo.yml",
            'locust_request_duration_seconds_bucket{method=~"(?i)GET", name=~"/api/v1/items.*", le="0.25"}[6h]',
            'locust_request_duration_seconds_bucket{method=~"(?i)GET", name=~"/api/v1/items.*", le="0.5"}[6h]',
            id="slow-latency",
        ),
        pytest.param(
            "slo.yml",
            'locust_request_intended_duration_seconds_bucket{method=~"(?i)GET", name=~"/api/v1/items.*", le="0.25"}[6h]',
            'locust_request_intended_duration_seconds_bucket{method=~"(?i)GET", name=~"/api/v1/items.*", le="0.5"}[6h]',
            id="slow-latency-rate-run",
        ),
        pytest.param("slo.yml", "for: 2m", "for: 20m", id="fast-hold"),
        pytest.param(
            "recording.yml",
            "0.95, run_id_le:locust_request_duration_seconds_bucket:rate5m",
            "0.9, run_id_le:locust_request_duration_seconds_bucket:rate5m",
            id="p95",
        ),
    ],
)
@pytest.mark.integration
def test_unit_tests_catch_a_broken_rule(tmp_path, rule_file, old, new):
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    text = (copy / rule_file).read_text()
    assert old in text
    (copy / rule_file).write_text(text.replace(old, new, 1))
    result = promtool("test", "rules", *sorted((copy / "tests").glob("*.yml")), rules=copy)
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


def test_recording_rules_are_named_level_metric_operation():
    for rule in rules(RULES / "recording.yml"):
        level, metric, operation = rule["record"].split(":")
        assert re.fullmatch(r"[a-z_]+", level) and re.fullmatch(r"[a-z_]+", metric), rule["record"]
        assert re.fullmatch(r"(rate|ratio_rate|p\d+_rate)\d+[mh]", operation), rule["record"]
        window = operation.rsplit("rate", 1)[1]
        # The window in the name is the one computed, directly or by the recorded series read.
        assert f"[{window}]" in rule["expr"] or f":rate{window}" in rule["expr"], rule["record"]
        # The level names the labels kept.
        kept = re.findall(r"sum by \(([^)]*)\)", rule["expr"])
        assert not kept or all("_".join(k.replace(" ", "").split(",")) == level for k in kept), rule["record"]


def test_alerts_read_recorded_series_and_say_who_to_wake():
    recorded = {rule["record"] for path in RULE_FILES for rule in rules(path) if "record" in rule}
    alerts = [rule for rule in rules(RULES / "slo.yml") if "alert" in rule]
    for alert in alerts:
        used = set(re.findall(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", alert["expr"]))
        assert used and used <= recorded, alert["alert"]
        assert alert["labels"]["severity"] in ("page", "ticket")
        assert "{{ $labels.run_id }}" in alert["annotations"]["summary"]
    slos = {(a["labels"]["slo"], a["labels"]["severity"]) for a in alerts}
    assert slos == {("errors", "page"), ("errors", "ticket"), ("latency", "page"), ("latency", "ticket")}


def test_committed_slo_rules_are_what_slo_yaml_generates():
    assert (RULES / "slo.yml").read_text() == dashboards.render_rules(ROOT / "locust" / "slo.yaml"), (
        "prometheus/rules/slo.yml differs from locust/slo.yaml: run `lab dashboards` and commit it"
    )


def test_every_objective_with_a_budget_has_its_alerts_at_its_threshold():
    objectives = slo.load(ROOT / "locust" / "slo.yaml")
    alerts = [rule for rule in rules(RULES / "slo.yml") if "alert" in rule]
    for objective in objectives:
        mine = [a for a in alerts if a["labels"]["objective"] == objective.name]
        if objective.metric == "throughput":
            assert not mine, objective.name
            continue
        assert sorted(a["labels"]["severity"] for a in mine) == ["page", "ticket"], objective.name
        budget = (
            objective.threshold if objective.metric == "error_ratio" else 1 - slo.QUANTILES[objective.metric]
        )
        for alert in mine:
            assert f"* {budget:g})" in alert["expr"], (objective.name, alert["expr"])
        if objective.metric in slo.QUANTILES:
            slis = [
                r for r in rules(RULES / "slo.yml") if r.get("labels", {}).get("objective") == objective.name
            ]
            assert slis and all(f'le="{objective.threshold!r}"' in r["expr"] for r in slis if "record" in r)


def test_rules_only_read_the_metric_contract():
    text = (ROOT / "docs" / "architecture.md").read_text()
    contract = set(re.findall(r"`([a-z_]+)`", text.split("## Metric contract", 1)[1]))
    contract |= {f"{name}_{suffix}" for name in contract for suffix in ("bucket", "count")}
    for rule in rules(RULES / "recording.yml"):
        for metric in re.findall(r"\((locust_[a-z_]+|http_[a-z_]+)[\[{]", rule["expr"]):
            assert metric in contract, (rule["record"], metric)


def test_latency_thresholds_are_bucket_boundaries_of_the_exporter():
    # A latency SLI reads the bucket le=<threshold>: without that boundary it would read nothing.
    from lab.plugin.exporter import DEFAULT_BUCKETS

    boundaries = {float(le) for le in re.findall(r'le="([^"]+)"', (RULES / "slo.yml").read_text())}
    assert boundaries and boundaries <= set(DEFAULT_BUCKETS)
