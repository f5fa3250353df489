"""A Locust master killed in the middle of a run (`docker kill`, as an OOM kill would) keeps the run's
figures: its last checkpoint (LOCUST_LAB_CHECKPOINT_SECONDS, 60 s) is in the results folder, marked
partial, `lab report` says the run ended without a stop, and the restarted master leaves that folder alone.

It kills and restarts the master, so it is a `lifecycle` test. Duration: about 2 to 3 minutes.
"""

import json
import time

import pytest

from tests.e2e.conftest import http_json
from tests.e2e.test_faults import containers, start_load
from tests.support.report_files import locust_rows

pytestmark = [pytest.mark.e2e, pytest.mark.lifecycle]

KILL_AFTER_SECONDS = 70


def test_a_killed_master_keeps_its_first_minute(stack):
    run_id = start_load(stack, users=5, seconds=600)
    folder = stack.results_dir / run_id
    started = json.loads((folder / "run.json").read_text())["start"]
    time.sleep(max(0.0, started + KILL_AFTER_SECONDS - time.time()))
    (master,) = containers(stack, "locust-master")
    master.kill()
    master.wait(timeout=60)

    record = json.loads((folder / "run.json").read_text())
    assert record["partial"] is True and record["end"] is None, record
    assert started + 60 <= record["written_at"] < started + KILL_AFTER_SECONDS
    # The first minute's requests: at least all that Prometheus scraped from the master by then.
    sel = f'{{run_id="{run_id}"}}'
    scraped = stack.query(f"sum(locust_requests_total{sel})", at=started + 55)
    assert scraped and float(scraped[0]["value"][1]) > 0
    count = int(locust_rows(folder)["Aggregated"]["Request Count"])
    assert count >= float(scraped[0]["value"][1])
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]

    report = stack.lab("report", run_id)
    assert f"run {run_id} ended without a stop" in report.stdout
    assert json.loads((folder / "report.json").read_text())["run"]["partial"] is True

    # Back up (lab up starts what is missing), with its workers; the crashed run's folder stays as it was.
    before = {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith("report.")}
    stack.lab("up", timeout=600)
    stack.wait_for(
        lambda: len(http_json(f"{stack.locust_url}/stats/requests")["workers"]) == 2,
        120,
        "the workers did not join the restarted master",
    )
    new_run = stack.run_load(users=5, seconds=15)
    assert new_run != run_id
    after = {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith("report.")}
    assert after == before
