"""A Locust killed mid-run keeps its run's figures: a real Locust with the whole Load Lab plugin loads a
loopback target, writes its checkpoint every 10 s, and is killed with SIGKILL (as an OOM kill would)."""

import json
import signal
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from lab.plugin import checkpoint
from tests.integration import exporter_target
from tests.support.locust import LocustProcesses
from tests.support.report_files import locust_rows

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
INTERVAL = 10
SLO = "objectives:\n  errors:\n    metric: error_ratio\n    max: 0.5\n"


def exported_requests(metrics_url: str) -> float:
    """The exporter's sum of locust_requests_total: what Prometheus would have scraped at this moment."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("locust_requests_total{")
    )


@pytest.fixture
def target():
    server = exporter_target.Server(("127.0.0.1", 0), exporter_target.Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def start_locust(workdir: Path, target: str, seconds: int) -> LocustProcesses:
    (workdir / "slo.yaml").write_text(SLO)
    args = ["-u", "5", "-r", "5", "-t", f"{seconds}s", "--host", target,
            "--scenarios-file", str(ROOT / "locust/scenarios.yaml"), "--slo-file", str(workdir / "slo.yaml"),
            "--lab-checkpoint-seconds", str(INTERVAL)]  # fmt: skip
    return LocustProcesses(
        workdir, [HERE / "report_locustfile.py"], headless=True, exporter=True, args=args
    ).start()


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_killed_locust_leaves_its_last_checkpoint_and_a_restart_leaves_it_alone(tmp_path, target):
    locust = start_locust(tmp_path, target, seconds=300)
    try:
        results = tmp_path / "results"
        deadline = time.monotonic() + 30
        while not list(results.glob("*/run.json")):
            assert time.monotonic() < deadline, "no run started"
            time.sleep(0.2)
        (folder,) = [p.parent for p in results.glob("*/run.json")]
        started = json.loads((folder / "run.json").read_text())["start"]
        # Just before the second checkpoint, what the exporter serves: the checkpoint must hold at least that.
        time.sleep(max(0.0, started + 2 * INTERVAL - 1.5 - time.time()))
        exported = exported_requests(locust.metrics_url)
        time.sleep(max(0.0, started + 2 * INTERVAL + 4 - time.time()))
    finally:
        locust.master.send_signal(signal.SIGKILL)
        locust.master.wait()
        locust.stop()

    record = json.loads((folder / "run.json").read_text())
    assert record["partial"] is True and record["end"] is None
    assert started + 2 * INTERVAL <= record["written_at"] < started + 2 * INTERVAL + 4
    count = int(locust_rows(folder)["Aggregated"]["Request Count"])
    assert exported > 0 and count >= exported
    assert {"locust_stats.csv", "locust_failures.csv", "locust_exceptions.csv", "locust_report.html"} <= set(
        contents(folder)
    )
    assert not [name for name in contents(folder) if name.endswith(".tmp")]

    # The restarted Locust runs into a new folder and never touches the crashed run's.
    before = contents(folder)
    again = start_locust(tmp_path, target, seconds=5)
    try:
        assert again.wait(timeout=90) in (0, 1)
    finally:
        again.stop()
    assert contents(folder) == before
    (new,) = {p.parent for p in results.glob("*/run.json")} - {folder}
    assert json.loads((new / "run.json").read_text())["partial"] is False


def test_checkpoints_fall_at_whole_intervals_from_the_start():
    assert checkpoint.due(100.0, 0, 60, 159.9) == 0
    assert checkpoint.due(100.0, 0, 60, 160.0) == 1
    assert checkpoint.due(100.0, 1, 60, 200.0) == 0
    assert checkpoint.due(100.0, 1, 60, 221.0) == 2


@pytest.mark.parametrize("text", ["5", "-1", "x", "9"])
def test_a_checkpoint_interval_below_the_minimum_is_refused(text):
    with pytest.raises(Exception, match="is not 0"):
        checkpoint.checkpoint_seconds(text)
