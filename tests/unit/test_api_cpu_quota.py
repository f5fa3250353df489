"""The demo API's CPU quota, read from its cgroup (compose/api/demoapi/metrics.py): cgroup v2 and v1."""

import pytest
from demoapi.metrics import CpuQuotaCollector, cpu_quota_cores


def v2(tmp_path, cpu_max: str):
    (tmp_path / "cpu.max").write_text(cpu_max)
    return tmp_path


def v1(tmp_path, quota: str, period: str = "100000\n"):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(quota)
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(period)
    return tmp_path


@pytest.mark.parametrize(
    ("cgroup", "cores"),
    [
        (lambda p: v2(p, "50000 100000\n"), 0.5),  # docker run --cpus 0.5 on cgroup v2
        (lambda p: v2(p, "150000 100000\n"), 1.5),
        (lambda p: v2(p, "max 100000\n"), None),  # no quota
        (lambda p: v1(p, "50000\n"), 0.5),  # the same on cgroup v1 (as on this project's engine)
        (lambda p: v1(p, "25000\n", "50000\n"), 0.5),
        (lambda p: v1(p, "-1\n"), None),  # no quota
        (lambda p: p, None),  # no CPU controller to read
    ],
)
def test_the_quota_is_its_quota_over_its_period_in_cores(tmp_path, cgroup, cores):
    assert cpu_quota_cores(cgroup(tmp_path)) == cores


def test_the_gauge_is_there_only_when_a_quota_is_set(tmp_path):
    assert list(CpuQuotaCollector(tmp_path).collect()) == []
    (family,) = CpuQuotaCollector(v1(tmp_path, "50000\n")).collect()
    assert (family.name, [s.value for s in family.samples]) == ("api_cpu_quota_cores", [0.5])
