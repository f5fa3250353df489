"""The limiter's PromQL (lab/core/limits.py) on Prometheus's own engine (promtool, from the lab's
Prometheus image): the API's CPU against one core, or against its container's CPU quota below one."""

import pytest
import yaml

from lab.core import limits
from tests.support.local_services import promtool

pytestmark = pytest.mark.integration

# 0.45 cores: the API's process burns 2.25 s of CPU per 5 s scrape, as process-exporter counts it.
CPU = {
    "series": 'namedprocess_namegroup_cpu_seconds_total{groupname="api", job="process"}',
    "values": "0+2.25x24",
}


def quota(cores: float) -> dict:
    return {"series": 'api_cpu_quota_cores{job="api"}', "values": f"{cores}x24"}


def evaluate(expr: str, tmp_path, *cases: tuple[list[dict], float]):
    tests = [
        {
            "interval": "5s",
            "input_series": series,
            # Rounded: a rate's extrapolation leaves float noise in the last digits.
            "promql_expr_test": [
                {
                    "expr": f"round({expr}, 0.001)",
                    "eval_time": "2m",
                    "exp_samples": [{"labels": "{}", "value": value}],
                }
            ],
        }
        for series, value in cases
    ]
    (tmp_path / "limits.yml").write_text(yaml.safe_dump({"rule_files": [], "tests": tests}))
    result = promtool("test", "rules", "limits.yml", files={"limits.yml": tmp_path / "limits.yml"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_apis_cpu_is_against_its_quota_below_one_core_and_one_core_otherwise(tmp_path):
    evaluate(
        limits.query(limits.BY_ID["api_cpu"], "1m"),
        tmp_path,
        ([CPU], 0.45),  # no quota: one core
        ([CPU, quota(0.5)], 0.9),  # 0.45 of a 0.5-core quota
        ([CPU, quota(2)], 0.45),  # a single thread cannot use more than one core of a larger quota
    )


def test_the_quota_measure_reads_is_the_one_the_utilisation_used(tmp_path):
    evaluate(limits.BY_ID["api_cpu"].quota.replace(limits.WINDOW, "1m"), tmp_path, ([quota(0.5)], 0.5))
