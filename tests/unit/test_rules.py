"""Prometheus rules: valid for promtool, their unit tests pass, and those tests catch a broken rule."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "prometheus" / "rules"
RULE_FILES = [RULES / "recording.yml", RULES / "alerts.yml"]
UNIT_TESTS = sorted((RULES / "tests").glob("*.yml"))


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: apt-get install prometheus"
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def rules(path: Path) -> list[dict]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def test_promtool_check_rules_passes():
    result = promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules_passes():
    assert UNIT_TESTS
    result = promtool("test", "rules", *UNIT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("rule_file", "old", "new"),
    [
        pytest.param("alerts.yml", "ratio_rate5m > (14.4 * 0.01)", "ratio_rate5m > (0.5)", id="fast-errors"),
        pytest.param("alerts.yml", "ratio_rate6h > (6 * 0.05)", "ratio_rate6h > (0.9)", id="slow-latency"),
        pytest.param("alerts.yml", "for: 2m", "for: 20m", id="fast-hold"),
        pytest.param(
            "recording.yml",
            "0.95, run_id_le:locust_request_duration_seconds_bucket:rate5m",
            "0.9, run_id_le:locust_request_duration_seconds_bucket:rate5m",
            id="p95",
        ),
    ],
)
def test_unit_tests_catch_a_broken_rule(tmp_path, rule_file, old, new):
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    text = (copy / rule_file).read_text()
    assert old in text
    (copy / rule_file).write_text(text.replace(old, new, 1))
    result = promtool("test", "rules", *sorted((copy / "tests").glob("*.yml")))
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
    recorded = {rule["record"] for rule in rules(RULES / "recording.yml")}
    for alert in rules(RULES / "alerts.yml"):
        used = set(re.findall(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", alert["expr"]))
        assert used and used <= recorded, alert["alert"]
        assert alert["labels"]["severity"] in ("page", "ticket")
        assert "{{ $labels.run_id }}" in alert["annotations"]["summary"]
    slos = {(a["labels"]["slo"], a["labels"]["severity"]) for a in rules(RULES / "alerts.yml")}
    assert slos == {("errors", "page"), ("errors", "ticket"), ("latency", "page"), ("latency", "ticket")}


def test_rules_only_read_the_metric_contract():
    text = (ROOT / "docs" / "architecture.md").read_text()
    contract = set(re.findall(r"`([a-z_]+)`", text.split("## Metric contract", 1)[1]))
    contract |= {f"{name}_{suffix}" for name in contract for suffix in ("bucket", "count")}
    for rule in rules(RULES / "recording.yml"):
        for metric in re.findall(r"\((locust_[a-z_]+|http_[a-z_]+)[\[{]", rule["expr"]):
            assert metric in contract, (rule["record"], metric)


def test_latency_threshold_is_a_bucket_boundary_of_the_exporter():
    # The slow-request ratio reads the le="0.5" bucket: without that boundary it would read nothing.
    from lab.plugin.exporter import DEFAULT_BUCKETS

    text = (RULES / "recording.yml").read_text()
    assert 'le="0.5"' in text and 0.5 in DEFAULT_BUCKETS
