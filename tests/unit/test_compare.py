"""`lab compare` on fixed figures: the comparison JSON, the printed table, and the CLI's errors."""

import json

import pytest

from lab.cli import main
from lab.report import compare

BEFORE = {
    "run_id": "20261121T190000Z-baseline",
    "endpoints": {
        "overall": {"requests_per_second": 50.0, "p95_seconds": 0.12, "p99_seconds": 0.3, "error_ratio": 0.0},
        "GET /items": {
            "requests_per_second": 40.0,
            "p95_seconds": 0.1,
            "p99_seconds": 0.2,
            "error_ratio": 0.0,
        },
        "POST /login": {
            "requests_per_second": 10.0,
            "p95_seconds": 0.25,
            "p99_seconds": 0.4,
            "error_ratio": 0.0,
        },
    },
}


def slowed(by: float) -> dict:
    after = json.loads(json.dumps(BEFORE))
    after["run_id"] = "20261121T191000Z-baseline"
    for figures in after["endpoints"].values():
        figures["p95_seconds"] += by
        figures["p99_seconds"] += by
        figures["requests_per_second"] *= 0.7
    return after


def test_a_run_against_itself_reports_no_regression():
    result = compare.compare(BEFORE, BEFORE, 0.2, 0.01, 0.01)
    assert result["regressions"] == 0
    assert result["before"] == result["after"] == BEFORE["run_id"]
    table = compare.format_table(result["rows"])
    assert "REGRESSION" not in table
    assert table.splitlines()[1].split() == ["overall", "req/s", "50.00", "50.00", "+0.0%"]
    assert table.splitlines()[4].split() == ["overall", "errors", "0.00%", "0.00%", "+0.00", "pts"]


def test_a_slowed_run_is_flagged_per_endpoint_and_metric():
    result = compare.compare(BEFORE, slowed(0.2), 0.2, 0.01, 0.01)
    flagged = {(r["endpoint"], r["metric"]) for r in result["rows"] if r["regression"]}
    assert result["regressions"] == len(flagged) == 9  # 3 endpoints x requests/s, p95 and p99
    assert ("overall", "error_ratio") not in flagged and ("overall", "p95_seconds") in flagged
    lines = compare.format_table(result["rows"]).splitlines()
    p95 = next(line for line in lines if line.startswith("GET /items") and " p95 " in line)
    assert p95.split() == ["GET", "/items", "p95", "100.0", "ms", "300.0", "ms", "+200.0%", "REGRESSION"]
    assert json.loads(json.dumps(result)) == result  # what --json writes


def test_a_new_endpoint_is_listed_but_not_judged():
    after = json.loads(json.dumps(BEFORE))
    after["endpoints"]["GET /new"] = dict(after["endpoints"]["GET /items"])
    result = compare.compare(BEFORE, after, 0.2, 0.01, 0.01)
    assert result["regressions"] == 0
    assert "only in one run" in compare.format_table(result["rows"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "RUN"], "no baseline at"),
        (["compare", "A", "B", "C"], "give RUN_A RUN_B, or one RUN"),
        (["compare", "--save-baseline", "A", "B"], "give RUN_A RUN_B, or one RUN"),
        (["compare", "A", "B"], "unknown run id 'A'"),
    ],
)
def test_bad_invocations_are_one_line_errors(tmp_path, capsys, argv, message):
    assert main([*argv, "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_a_corrupt_baseline_is_an_error_naming_the_file(tmp_path, capsys):
    (tmp_path / "baseline.json").write_text("{not json")
    assert main(["compare", "RUN", "--results", str(tmp_path)]) == 2
    assert f"{tmp_path / 'baseline.json'} is not valid JSON" in capsys.readouterr().err


def test_a_rate_run_that_drops_more_arrivals_is_a_regression_in_percentage_points():
    before = {
        "run_id": "a",
        "clock": compare.INTENDED_CLOCK,
        "endpoints": json.loads(json.dumps(BEFORE["endpoints"])),
    }
    after = {**json.loads(json.dumps(before)), "run_id": "b"}
    before["endpoints"]["overall"]["dropped_ratio"] = 0.0
    after["endpoints"]["overall"]["dropped_ratio"] = 0.05
    result = compare.compare(before, after, 0.2, 0.01, 0.01)
    flagged = [(r["endpoint"], r["metric"]) for r in result["rows"] if r["regression"]]
    assert flagged == [("overall", "dropped_ratio")]
    assert result["clock"] == {"before": compare.INTENDED_CLOCK, "after": compare.INTENDED_CLOCK}
    line = next(line for line in compare.format_table(result["rows"]).splitlines() if " dropped " in line)
    assert line.split() == ["overall", "dropped", "0.00%", "5.00%", "+5.00", "pts", "REGRESSION"]
    # A closed run has no dropped row; a baseline saved before runs had a clock reads as a closed run's.
    closed = compare.compare(BEFORE, BEFORE, 0.2, 0.01, 0.01)
    assert not any(r["metric"] == "dropped_ratio" for r in closed["rows"])
    assert closed["clock"]["before"] == compare.LOCUST_CLOCK
