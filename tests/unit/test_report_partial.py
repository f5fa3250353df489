"""A run whose master died mid-run (run.json partial, no end): the report covers it up to its last
checkpoint and says it ended without a stop."""

import dataclasses

from lab import report
from lab.report import html as report_html
from lab.report import plots as report_plots
from tests.unit.test_report import END, RUN_ID, START, THRESHOLDS, make_run, responses


def test_a_partial_run_ends_at_its_last_checkpoint(tmp_path):
    # As the master's checkpoint writes it: no end, the time it was written.
    dataclasses.replace(make_run(tmp_path), ended_at=None, folder=None).write(tmp_path)
    run = report.load_run(tmp_path.parent, tmp_path.name)
    assert run.run_id == RUN_ID and run.partial and run.ended_at is None
    assert run.written_at is not None and run.end == run.written_at

    built = report.build(dataclasses.replace(run, written_at=END), responses(), {}, THRESHOLDS)
    assert built["run"]["partial"] is True and built["run"]["duration_seconds"] == END - START
    page = report_html.render(built, report_plots.draw(built))
    assert "ended without a stop" in page and "still running when reported" not in page


def test_an_ended_run_is_not_partial(tmp_path):
    make_run(tmp_path).write(tmp_path)
    run = report.load_run(tmp_path.parent, tmp_path.name)
    assert not run.partial and run.end == END
    built = report.build(run, responses(), {}, THRESHOLDS)
    assert built["run"]["partial"] is False
    assert "ended without a stop" not in report_html.render(built, report_plots.draw(built))
