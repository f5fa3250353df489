"""`lab runs`: one line per run in the results folder, newest first, figures from the run's files."""

import json

from lab.cli import main
from lab.core.runrecord import RunRecord
from tests.unit.test_report import FAILURES_CSV, STATS_CSV


def write_run(results, run_id, scenario, start, end, slo=None, capacity=None, arrivals=None):
    folder = results / run_id
    folder.mkdir(parents=True)
    RunRecord(run_id=run_id, scenario=scenario, host="", started_at=start, ended_at=end).write(folder)
    if end is not None:
        (folder / "locust_stats.csv").write_text(STATS_CSV)
        (folder / "locust_failures.csv").write_text(FAILURES_CSV)
    for name, content in (("slo", slo), ("capacity", capacity), ("arrivals", arrivals)):
        if content is not None:
            (folder / f"{name}.json").write_text(json.dumps(content))


def test_runs_are_listed_newest_first_with_their_figures(tmp_path, capsys):
    write_run(
        tmp_path, "20231114T221320Z-baseline", "baseline", 1_700_000_000, 1_700_000_060, slo={"passed": True}
    )
    write_run(
        tmp_path,
        "20231115T080000Z-capacity",
        "capacity",
        1_700_035_200,
        1_700_039_000,
        slo={"passed": False, "failed": ["p95"]},
        capacity={"users": 40, "requests_per_second": 212.34},
    )
    write_run(tmp_path, "20231116T080000Z-soak", "soak", 1_700_121_600, None)
    write_run(
        tmp_path, "20231113T080000Z-capacity", "capacity", 1_699_862_400, 1_699_862_500,
        capacity={"users": 25, "requests_per_second": 10.06, "reason": "max_users"},
    )  # fmt: skip
    assert main(["runs", "--results", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "run",
        "id",
        "scenario",
        "start",
        "(UTC)",
        "duration",
        "requests",
        "p95",
        "verdict",
        "capacity",
    ]
    assert [line.split()[0] for line in lines[1:]] == [
        "20231116T080000Z-soak",
        "20231115T080000Z-capacity",
        "20231114T221320Z-baseline",
        "20231113T080000Z-capacity",
    ]
    assert lines[1].split()[1:] == ["soak", "2023-11-16", "08:00:00", "running", "-", "-", "running", "-"]
    assert lines[2].split()[1:] == [
        "capacity", "2023-11-15", "08:00:00", "1h03m20s", "120", "300", "ms", "FAIL", "40", "users", "@", "212.3/s",
    ]  # fmt: skip
    assert lines[3].split()[1:] == [
        "baseline",
        "2023-11-14",
        "22:13:20",
        "1m00s",
        "120",
        "300",
        "ms",
        "PASS",
        "-",
    ]
    # A search that stopped at its maximum found a lower bound.
    assert "at least 25 users @ 10.1/s" in lines[4]


def test_a_rate_search_is_listed_with_the_rate_it_carried(tmp_path, capsys):
    write_run(
        tmp_path,
        "20231115T080000Z-rate-capacity",
        "rate-capacity",
        1_700_035_200,
        1_700_035_300,
        slo={"passed": True},
        capacity={"users": 40, "requests_per_second": 88.72, "rate": 90.0},
    )
    assert main(["runs", "--results", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-4:] == ["90/s", "offered", "@", "88.7/s"]


def test_an_empty_results_folder_says_how_to_start_a_run(tmp_path, capsys):
    assert main(["runs", "--results", str(tmp_path)]) == 0
    assert "no runs in" in capsys.readouterr().out


def test_a_rate_runs_p95_is_the_one_its_verdict_judged_from_the_intended_start(tmp_path, capsys):
    intended = {"requests": 120, "p50_seconds": 0.4, "p95_seconds": 0.95, "p99_seconds": 1.2}
    arrivals = {"arrivals": 130, "dropped": 10, "started": 120, "intended": {"overall": intended}}
    write_run(tmp_path, "20231115T080000Z-rate", "rate", 1_700_035_200, 1_700_035_260, arrivals=arrivals)
    assert main(["runs", "--results", str(tmp_path)]) == 0
    line = capsys.readouterr().out.splitlines()[1].split()
    assert line[5:8] == ["120", "950", "ms"]  # Locust's own CSV says 300 ms
