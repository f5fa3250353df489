"""A run whose master died mid-run (run.json partial, no end): the report covers it up to its last
checkpoint and says it ended without a stop."""

import json

from lab import report
from lab.report import html as report_html
from lab.report import plots as report_plots
from tests.unit.test_report import END, RUN_ID, START, THRESHOLDS, make_run, responses


def write_record(folder, **fields):
    (folder / RUN_ID).mkdir()
    record = {"run_id": RUN_ID, "scenario": "baseline", "host": "http://api:8000", "start": START, **fields}
    (folder / RUN_ID / "run.json").write_text(json.dumps(record))


def test_a_partial_run_ends_at_its_last_checkpoint(tmp_path):
    write_record(tmp_path, end=None, partial=True, written_at=END)
    run = report.load_run(tmp_path, RUN_ID)
    assert run.partial and run.end == END

    built = report.build(run, responses(), {}, THRESHOLDS)
    assert built["run"]["partial"] is True and built["run"]["duration_seconds"] == END - START
    page = report_html.render(built, report_plots.draw(built))
    assert "ended without a stop" in page and "still running when reported" not in page


def test_an_ended_run_is_not_partial(tmp_path):
    write_record(tmp_path, end=END, partial=False, written_at=END + 5)
    run = report.load_run(tmp_path, RUN_ID)
    assert not run.partial and run.end == END
    built = report.build(make_run(tmp_path), responses(), {}, THRESHOLDS)
    assert "ended without a stop" not in report_html.render(built, report_plots.draw(built))
