"""The run ends once (lab.plugin.runs): a real Locust master with two real workers, or a local runner,
against a loopback server. Every results file holds the same figures as Locust's own CSV, to the
request, and nothing rewrites a run that has ended."""

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.integration import test_exporter_cluster
from tests.integration.test_exporter_cluster import REPO, Locust, read_stats_csv
from tests.support.local_services import free_port, wait_until
from tests.support.locust import LocustProcesses, locust_command, locust_env

HERE = Path(__file__).parent
target = test_exporter_cluster.target  # the loopback server fixture
LOCUSTFILE = HERE / "run_end_locustfile.py"
PLUGIN_FILES = ("--scenarios-file", str(REPO / "locust/scenarios.yaml"), "--slo-file", "slo.yaml")
SLO = """\
objectives:
  errors:
    metric: error_ratio
    max: 0.5
  items-p95:
    metric: latency_p95
    requests: "GET /items/*"
    max: {items_p95}
  home-p50:
    metric: latency_p50
    requests: "GET /"
    max: 10s
"""


def start(tmp_path, target, user_class="Visitor", workers=2, items_p95="10s") -> Locust:
    (tmp_path / "slo.yaml").write_text(SLO.format(items_p95=items_p95))
    locust = Locust(tmp_path, target, user_class, workers, PLUGIN_FILES, LOCUSTFILE)
    wait_until(lambda: locust.value("locust_workers", state="ready") == workers or not workers, 30, 0.2)
    return locust


def aggregated(path: Path) -> dict:
    with open(path, newline="") as f:
        return next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")


def html_counts(path: Path) -> dict[tuple[str, str], int]:
    """Request counts per (method, name) in Locust's HTML report (its embedded statistics)."""
    text = path.read_text()
    start = text.index('"requests_statistics": ') + len('"requests_statistics": ')
    rows, _ = json.JSONDecoder().raw_decode(text[start:])
    return {(row["method"] or "", row["name"]): row["num_requests"] for row in rows}


def figures_requests(figures: dict) -> dict[str, int]:
    return {key: f["requests"] for key, f in figures["endpoints"].items()}


def folder_digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_every_results_file_agrees_with_locusts_csv_with_two_workers(tmp_path, target):
    locust = start(tmp_path, target)
    try:
        locust.swarm(16)
        run_id = wait_until(lambda: (r := locust.run())["state"] == "running" and r, 30, 0.2)["run_id"]
        wait_until(
            lambda: locust.value("locust_requests_total", run_id=run_id) >= 600, 40, 0.2, "600 requests"
        )
        requests.post(f"{locust.web_url}/stop", timeout=5).raise_for_status()
        # When the master's runner has stopped, the workers' last reports are still on their way.
        wait_until(
            lambda: requests.get(f"{locust.web_url}/stats/requests", timeout=5).json()["state"] == "stopped",
            30,
        )
        at_stop = locust.value("locust_requests_total", run_id=run_id)
        run = wait_until(lambda: (r := locust.run())["state"] == "ended" and r, 30, 0.2, "run ended")
        samples = locust.scrape()
    finally:
        locust.stop()
    folder = Path(run["results_dir"])
    stats = read_stats_csv(folder / "locust_stats.csv")
    total = int(aggregated(folder / "locust_stats.csv")["Request Count"])
    failures = int(aggregated(folder / "locust_stats.csv")["Failure Count"])
    counts = {key: int(row["Request Count"]) for key, row in stats.items()}
    assert sum(counts.values()) == total > at_stop, "the workers' last reports carried no requests"

    slo = json.loads((folder / "slo.json").read_text())
    assert slo["window"]["requests"] == total and slo["window"]["failures"] == failures
    by_objective = {o["objective"]: o["requests"] for o in slo["objectives"]}
    assert by_objective == {
        "errors": total,
        "items-p95": counts[("GET", "/items/[id]")],
        "home-p50": counts[("GET", "/")],
    }
    assert run["outcome"]["window"] == slo["window"] and run["outcome"]["passed"] is True
    assert html_counts(folder / "locust_report.html") == {**counts, ("", "Aggregated"): total}
    exported = {
        (lab["method"], lab["name"]): v
        for lab, v in samples["locust_requests_total"]
        if lab["run_id"] == run_id
    }
    assert exported == counts
    failures_csv = list(csv.DictReader(open(folder / "locust_failures.csv", newline="")))
    assert sum(int(row["Occurrences"]) for row in failures_csv) == failures
    record = json.loads((folder / "run.json").read_text())
    assert record["run_id"] == run_id and record["end"] == run["ended_at"]
    assert "without the final stats report" not in (tmp_path / "master.log").read_text()

    # The report and the comparison, from the run's files (no Prometheus here).
    env = {
        **os.environ,
        "LAB_RESULTS_DIR": str(locust.results),
        "LAB_SLO_FILE": str(tmp_path / "slo.yaml"),
        "PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}",
    }
    for args in (("report", run_id), ("compare", run_id, run_id)):
        result = subprocess.run([sys.executable, "-m", "lab", *args], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    figures = json.loads((folder / "report.json").read_text())
    assert (figures["summary"]["requests"], figures["summary"]["failures"]) == (total, failures)
    assert figures_requests(figures) == {f"{method} {name}": n for (method, name), n in counts.items()}
    assert {o["objective"]: o["requests"] for o in figures["slo"]} == by_objective
    assert f">{total:,}<" in (folder / "report.html").read_text()
    compared = json.loads((folder / "compare.json").read_text())["requests"]
    assert compared["overall"] == {"before": total, "after": total}
    assert {k: v["after"] for k, v in compared.items() if k != "overall"} == figures_requests(figures)


def test_a_reset_a_second_stop_and_a_quit_after_the_end_change_nothing(tmp_path, target):
    """The issue's reproduction: a short run, POST /stats/reset after it stopped, then SIGTERM."""
    locust = start(tmp_path, target, workers=0)
    try:
        locust.swarm(4)
        run_id = wait_until(lambda: (r := locust.run())["state"] == "running" and r, 30, 0.2)["run_id"]
        wait_until(
            lambda: locust.value("locust_requests_total", run_id=run_id) >= 100, 40, 0.2, "100 requests"
        )
        run = locust.stop_test()
        folder = Path(run["results_dir"])
        files = folder_digest(folder)
        final = {
            name: {tuple(sorted(lab.items())): v for lab, v in series}
            for name, series in locust.scrape().items()
            if name.startswith(("locust_request", "locust_errors"))
        }
        assert (
            sum(final["locust_requests_total"].values())
            == int(aggregated(folder / "locust_stats.csv")["Request Count"])
            > 0
        )

        requests.post(f"{locust.web_url}/stats/reset", timeout=5).raise_for_status()
        assert (
            requests.get(f"{locust.web_url}/stats/requests", timeout=5).json()["stats"][-1]["num_requests"]
            == 0
        )
        requests.post(f"{locust.web_url}/stop", timeout=5).raise_for_status()
        after_reset = locust.scrape()
        for name, series in final.items():
            assert {tuple(sorted(lab.items())): v for lab, v in after_reset[name]} == series, name
        assert locust.run()["run_id"] == run_id
        locust.master.send_signal(signal.SIGTERM)
        locust.master.wait(timeout=30)
    finally:
        locust.stop()
    assert folder_digest(folder) == files
    assert [p.name for p in locust.results.iterdir()] == [run_id]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_headless_run_stopped_by_sigterm_exits_1_when_an_objective_failed(tmp_path, target, workers):
    """Locust fixes its exit code at quitting: the run must be judged on its final figures before that."""
    (tmp_path / "slo.yaml").write_text(SLO.format(items_p95="1ms"))  # requests take 5 ms
    locust = LocustProcesses(
        tmp_path,
        [LOCUSTFILE],
        workers=workers,
        headless=True,
        args=[
            "-u", "6", "-r", "6", "-t", "120s", "--host", target,
            "--exporter-port", "0", "--json-file", str(tmp_path / "own"), *PLUGIN_FILES, "Reader",
        ],
    )  # fmt: skip
    with locust:
        wait_until(lambda: any((tmp_path / "results").iterdir()), 60, 0.2, "the run started")
        time.sleep(4)
        locust.master.send_signal(signal.SIGTERM)
        code = locust.wait(timeout=60)
    assert code == 1, (tmp_path / "master.log").read_text()[-3000:]
    (folder,) = (tmp_path / "results").iterdir()
    slo = json.loads((folder / "slo.json").read_text())
    assert slo["failed"] == ["items-p95"]
    total = int(aggregated(folder / "locust_stats.csv")["Request Count"])
    own = json.loads((tmp_path / "own.json").read_text())
    assert slo["window"]["requests"] == total == sum(e["num_requests"] for e in own) > 0


def test_an_objective_with_abort_after_stops_a_run_that_breaches_it(tmp_path, target):
    """errors: at most 1% for 3 s; the Visitor's /fail requests are 10% from the start. The run is
    stopped within abort_after plus one worker report interval and two checks; nothing else stops it."""
    (tmp_path / "slo.yaml").write_text(
        SLO.format(items_p95="10s").replace("    max: 0.5\n", "    max: 0.01\n    abort_after: 3s\n", 1)
    )
    locust = Locust(tmp_path, target, "Visitor", 2, PLUGIN_FILES, LOCUSTFILE)
    try:
        wait_until(lambda: locust.value("locust_workers", state="ready") == 2, 30, 0.2)
        locust.swarm(8)
        run = wait_until(lambda: (r := locust.run())["state"] == "ended" and r, 60, 0.2, "the run aborted")
    finally:
        locust.stop()
    from locust.runners import WORKER_REPORT_INTERVAL

    from lab.plugin.verdicts import CHECK_SECONDS

    outcome = run["outcome"]
    assert outcome["aborted"]["at"] - run["started_at"] <= 3 + WORKER_REPORT_INTERVAL + 2 * CHECK_SECONDS
    assert outcome["passed"] is False and outcome["failed"] == ["errors"]
    assert outcome["aborted"]["objective"] == "errors"
    assert "abort_after 3 s" in outcome["aborted"]["reason"]
    slo = json.loads((Path(run["results_dir"]) / "slo.json").read_text())
    assert slo["aborted"] == outcome["aborted"]


def test_a_headless_run_aborted_by_an_objective_exits_1(tmp_path, target):
    (tmp_path / "slo.yaml").write_text(
        SLO.format(items_p95="1ms").replace("max: 1ms", "max: 1ms\n    abort_after: 2s")
    )
    result = subprocess.run(
        locust_command([LOCUSTFILE], "--headless", "-u", "4", "-r", "4", "-t", "120s",
                       "--host", target, "--exporter-port", "0", *PLUGIN_FILES, "Reader"),
        cwd=tmp_path, env=locust_env(tmp_path / "results"), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    (folder,) = (tmp_path / "results").iterdir()
    slo = json.loads((folder / "slo.json").read_text())
    assert slo["aborted"]["objective"] == "items-p95" and slo["failed"] == ["items-p95"]
    record = json.loads((folder / "run.json").read_text())
    assert record["end"] - record["start"] < 10


def test_a_reset_during_a_run_ends_it_and_the_master_still_serves_it(tmp_path, target):
    locust = start(tmp_path, target, workers=0)
    try:
        locust.swarm(4)
        first = wait_until(lambda: (r := locust.run())["state"] == "running" and r, 30, 0.2)["run_id"]
        wait_until(lambda: locust.value("locust_requests_total", run_id=first) >= 50, 40, 0.2, "50 requests")
        requests.post(f"{locust.web_url}/stats/reset", timeout=5).raise_for_status()
        assert locust.run()["run_id"] != first
        ended = requests.get(f"{locust.web_url}/lab/run", params={"run_id": first}, timeout=5).json()
        unknown = requests.get(f"{locust.web_url}/lab/run", params={"run_id": "nope"}, timeout=5)
    finally:
        locust.stop()
    assert ended["run_id"] == first and ended["state"] == "ended"
    total = int(aggregated(Path(ended["results_dir"]) / "locust_stats.csv")["Request Count"])
    assert ended["outcome"]["window"]["requests"] == total > 0
    assert (
        unknown.status_code == 404 and "neither the current nor the previous run" in unknown.json()["error"]
    )
