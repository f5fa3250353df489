"""`lab report` and `lab compare` end to end without the compose stack: a real Locust (web UI, the whole Load Lab
plugin) loads a loopback target, a real Prometheus (the lab's image) scrapes the Locust exporter every
second, and the commands read it back. The report must agree with Locust's own CSV.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from lab.core.prometheus import Prometheus
from tests.integration import exporter_target
from tests.support.local_services import PrometheusServer, free_port
from tests.support.locust import LocustProcesses, locust_env
from tests.support.report_files import embedded_images, locust_rows

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHROMIUM = shutil.which("chromium")

SLO = """objectives:
  p95:
    metric: latency_p95
    max: 500ms
  errors:
    metric: error_ratio
    max: 0.2
"""


def http_json(url: str, data: dict | None = None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(url, data=body, timeout=10) as response:
        return json.loads(response.read())


def wait_for(predicate, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s: {message}")


class SlowableHandler(exporter_target.Handler):
    """The target; `extra_delay` (seconds) slows every reply, like the demo API's API_EXTRA_LATENCY_MS."""

    extra_delay = 0.0

    def do_GET(self):
        time.sleep(self.extra_delay)
        super().do_GET()


class Lab:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.results = workdir / "results"
        self.slo = workdir / "slo.yaml"
        self.slo.write_text(SLO)
        self.prometheus: PrometheusServer | None = None
        self.locust: LocustProcesses | None = None
        self.capacity: LocustProcesses | None = None
        self.last_run_id = None

    def start(self, target_url: str) -> None:
        self.target_url = target_url
        lab_files = ["--scenarios-file", str(ROOT / "locust/scenarios.yaml"), "--slo-file", str(self.slo)]
        env = locust_env(self.results)
        self.locust = LocustProcesses(
            self.workdir, [HERE / "report_locustfile.py"], web=True, exporter=True,
            args=["--host", target_url, *lab_files], env=env, name="locust",
        )  # fmt: skip
        # A short headless capacity search (3 steps of 6 s), started by run_capacity() on its own exporter.
        self.capacity = LocustProcesses(
            self.workdir, [HERE / "report_capacity_locustfile.py"], headless=True, exporter=True,
            args=["--host", target_url, *lab_files, "--scenario", "capacity",
                  "--scenario-params", "start_users=2,step_users=2,users=6,step_duration=6s,ramp=1s"],
            env=env, name="capacity",
        )  # fmt: skip
        # A short headless run of the open model (2 users for 150 arrivals/s: some are dropped), by run_headless().
        self.rate = LocustProcesses(
            self.workdir, [HERE / "report_rate_locustfile.py"], headless=True, exporter=True,
            args=["--host", target_url, *lab_files, "--scenario", "rate",
                  "--scenario-params", "rate=150,users=2,ramp=0s,duration=10s,max_delay=0.5s"],
            env=env, name="rate",
        )  # fmt: skip
        targets = (self.locust, self.capacity, self.rate)
        self.prometheus = PrometheusServer(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: locust\n"
            "    static_configs:\n      - targets:\n"
            + "".join(f"        - 127.0.0.1:{p.exporter_port}\n" for p in targets)
        ).start()
        self.prometheus_url = self.prometheus.url
        # The capacity search measures what limits it in this Prometheus (here it sees Locust's own CPU).
        self.capacity.env["LOCUST_LAB_PROMETHEUS_URL"] = self.prometheus_url
        self.locust_url = self.locust.web_url
        self.locust.start().wait_ready()

    def stop(self) -> None:
        for processes in (self.locust, self.capacity, self.rate):
            if processes and processes.master:
                processes.stop()
        if self.prometheus:
            self.prometheus.stop()

    def run_load(self, users: int, seconds: int) -> str:
        """A bounded run through Locust's web API; returns its id once Prometheus has its final counts."""
        reply = http_json(
            f"{self.locust_url}/swarm",
            {"user_count": users, "spawn_rate": users, "host": self.target_url, "run_time": f"{seconds}s"},
        )
        assert reply.get("success"), reply
        run_id = wait_for(
            lambda: (
                (http_json(f"{self.locust_url}/lab/run").get("run_id") or "") not in ("", self.last_run_id)
                and http_json(f"{self.locust_url}/lab/run")["run_id"]
            ),
            30,
            "a new run id",
        )
        self.last_run_id = run_id
        wait_for(
            lambda: (
                (self.results / run_id / "run.json").is_file()
                and json.loads((self.results / run_id / "run.json").read_text()).get("end")
            ),
            seconds + 30,
            "the run to end and write run.json",
        )
        total = locust_total(self.results / run_id)
        prometheus = Prometheus(self.prometheus_url)
        wait_for(
            lambda: [r for r in prometheus.query(f'sum(locust_requests_total{{run_id="{run_id}"}})')
                     if float(r["value"][1]) == total],
            30,
            f"Prometheus to scrape the final {total} requests of {run_id}",
        )  # fmt: skip
        return run_id

    def run_capacity(self) -> str:
        """The short headless capacity search in its own Locust; returns its run id."""
        return self.run_headless(self.capacity)

    def run_headless(self, processes: LocustProcesses) -> str:
        before = set(self.results.iterdir())
        processes.start().wait(timeout=120)
        (folder,) = set(self.results.iterdir()) - before
        return folder.name

    def lab(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "PROMETHEUS_URL": self.prometheus_url,
            "LAB_RESULTS_DIR": str(self.results),
            "LAB_SLO_FILE": str(self.slo),
            **extra_env,
        }
        return subprocess.run(
            [sys.executable, "-m", "lab", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip


def locust_total(folder: Path) -> int:
    return int(locust_rows(folder)["Aggregated"]["Request Count"])


@pytest.fixture(scope="module")
def lab():
    server = exporter_target.Server(("127.0.0.1", 0), SlowableHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with tempfile.TemporaryDirectory(prefix="lab-report-") as workdir:
        lab = Lab(Path(workdir))
        try:
            lab.start(f"http://127.0.0.1:{server.server_address[1]}")
            lab.run_id = lab.run_load(users=8, seconds=20)
            SlowableHandler.extra_delay = 0.2
            try:
                lab.slow_run_id = lab.run_load(users=8, seconds=12)
            finally:
                SlowableHandler.extra_delay = 0.0
            lab.capacity_run_id = lab.run_capacity()
            lab.rate_run_id = lab.run_headless(lab.rate)
            yield lab
        finally:
            lab.stop()
            server.shutdown()
            server.server_close()


def test_report_agrees_with_locusts_own_csv(lab):
    result = lab.lab("report", lab.run_id)
    assert result.returncode == 0, result.stderr
    folder = lab.results / lab.run_id
    html = (folder / "report.html").read_text()
    images = embedded_images(html)
    # The client side's plot; no server side here (no demo API, no TARGET_METRICS): said, not drawn empty.
    assert len(images) == 1 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "No server-side metrics in this window" in html

    figures = json.loads((folder / "report.json").read_text())
    rows = locust_rows(folder)
    assert figures["summary"]["requests"] == int(rows["Aggregated"]["Request Count"])
    assert figures["summary"]["failures"] == int(rows["Aggregated"]["Failure Count"])
    for key, row in rows.items():
        ours = figures["summary"] if key == "Aggregated" else figures["endpoints"][key]
        assert ours["requests"] == int(row["Request Count"]), key
        for column, name in (("50%", "p50_seconds"), ("95%", "p95_seconds"), ("99%", "p99_seconds")):
            assert ours[name] == int(row[column]) / 1000, (key, name)  # Locust's own, exactly
    assert figures["slo"] and {v["objective"] for v in figures["slo"]} == {"p95", "errors"}
    slo = json.loads((folder / "slo.json").read_text())
    assert slo["window"]["requests"] == figures["summary"]["requests"]
    assert figures["time_series_missing"] is None


def test_without_prometheus_the_report_says_so_and_compare_is_the_same(lab, tmp_path):
    down = {"PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}"}
    result = lab.lab("report", lab.run_id, **down)
    assert result.returncode == 0, result.stderr
    assert (
        "Prometheus is unreachable" in result.stderr
        and "writing the report without time series" in result.stderr
    )
    folder = lab.results / lab.run_id
    figures = json.loads((folder / "report.json").read_text())
    assert figures["time_series_missing"].startswith("The time series are missing: Prometheus is unreachable")
    assert figures["summary"]["requests"] == locust_total(folder)
    assert "The time series are missing" in (folder / "report.html").read_text()

    up = lab.lab("compare", lab.run_id, lab.slow_run_id, "--json", str(tmp_path / "up.json"))
    without = lab.lab("compare", lab.run_id, lab.slow_run_id, "--json", str(tmp_path / "down.json"), **down)
    assert (up.returncode, up.stdout) == (without.returncode, without.stdout) == (1, up.stdout)
    assert (tmp_path / "up.json").read_text() == (tmp_path / "down.json").read_text()


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs Chromium for the screenshot: install it (Debian: apt-get install chromium)",
)
def test_report_renders_in_headless_chromium(lab, tmp_path):
    import matplotlib.image

    assert lab.lab("report", lab.run_id).returncode == 0
    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2400",
         (lab.results / lab.run_id / "report.html").as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2400, 1280)
    # Text and plots drawn: many distinct colours, not a blank or error page.
    assert len({tuple(p) for p in pixels[::8, ::8].reshape(-1, pixels.shape[2])}) > 50
    if os.environ.get("LAB_SCREENSHOT_DIR"):  # keep it to look at
        shutil.copy(shot, Path(os.environ["LAB_SCREENSHOT_DIR"]) / "report.png")


def test_an_open_model_report_shows_the_arrivals_and_both_clocks_and_a_closed_one_neither(lab):
    folder = lab.results / lab.rate_run_id
    result = lab.lab("report", lab.rate_run_id)
    assert result.returncode == 0, result.stderr
    written = json.loads((folder / "arrivals.json").read_text())
    arrivals = json.loads((folder / "report.json").read_text())["arrivals"]
    assert (arrivals["arrivals"], arrivals["dropped"], arrivals["started"]) == (
        written["arrivals"],
        written["dropped"],
        written["started"],
    )
    assert written["arrivals"] >= 1400 and written["dropped"] > 0  # 150/s for 10 s, more than 2 users serve
    rows = locust_rows(folder)
    for clock in arrivals["clocks"]:  # Locust's CSV beside the second clock, both Locust's percentiles
        row = rows["Aggregated" if clock["endpoint"] == "overall" else clock["endpoint"]]
        assert clock["response"]["p95_seconds"] == int(row["95%"]) / 1000
        assert clock["intended"] == {q: written["intended"][clock["endpoint"]][q] for q in clock["intended"]}
        assert clock["intended"]["p95_seconds"] >= clock["response"]["p95_seconds"]
    html = (folder / "report.html").read_text()
    assert "Open model: arrivals and the second clock" in html
    assert len(embedded_images(html)) == 2  # the client side's and the open model's; no server side here
    assert lab.lab("report", lab.run_id).returncode == 0
    assert "Open model" not in (lab.results / lab.run_id / "report.html").read_text()
    assert not (lab.results / lab.run_id / "arrivals.json").exists()


def test_capacity_report_from_a_real_capacity_search(lab):
    folder = lab.results / lab.capacity_run_id
    search = json.loads((folder / "capacity.json").read_text())
    result = lab.lab("report", lab.capacity_run_id)
    assert result.returncode == 0, result.stderr
    cap = json.loads((folder / "report.json").read_text())["capacity"]
    assert [s["users"] for s in cap["steps"]] == [s["users"] for s in search["steps"]] == [2, 4, 6]
    for step in cap["steps"]:  # over each step's steady window, from the histogram
        assert 0 < step["p95_seconds"] < 0.5 and 0 < step["error_ratio"] < 0.3
    assert cap["users"] == search["users"] == 6
    # Throughput grew at every step and none breached: the search stopped at its maximum, a lower bound.
    assert search["reason"] == "max_users" and search["at_least"] is True
    assert search["sentence"].startswith("Capacity is at least 6 users at ")
    assert cap["sentence"].startswith(
        "At p95 under 500 ms and errors under 20%, capacity is at least 6 users at "
    )
    # What limits it, measured by the master in the real Prometheus: Locust's own CPU per step, far from
    # saturated; the stack's services are not scraped here, and are listed as not seen.
    master = search["resources"]["locust_master"]["utilisation"]
    assert len(master) == 3 and all(v is not None and 0 <= v < 0.85 for v in master)
    assert search["limiter"] is None
    not_seen = {m["resource"]: m["why"] for m in search["not_seen"]}
    assert not_seen["api_cpu"].startswith("no data from") and "locust_master" not in not_seen
    html = (folder / "report.html").read_text()
    assert "at least 6 users" in html and "Not seen (not judged)" in html
    assert len(embedded_images(html)) == 3  # with the resources' plot; no server side here


def test_compare_a_run_with_itself_and_with_a_slowed_run(lab, tmp_path):
    same = lab.lab("compare", lab.run_id, lab.run_id, "--json", str(tmp_path / "same.json"))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "no regression" in same.stdout
    assert json.loads((tmp_path / "same.json").read_text())["regressions"] == 0

    slowed = lab.lab("compare", lab.run_id, lab.slow_run_id)
    assert slowed.returncode == 1, slowed.stdout + slowed.stderr
    assert "REGRESSION" in slowed.stdout
    comparison = json.loads((lab.results / lab.slow_run_id / "compare.json").read_text())
    flagged = {(r["endpoint"], r["metric"]) for r in comparison["rows"] if r["regression"]}
    assert ("overall", "p95_seconds") in flagged and ("GET /", "p95_seconds") in flagged


def test_compare_judges_a_rate_run_on_its_intended_clock_with_its_drops(lab, tmp_path):
    written = json.loads((lab.results / lab.rate_run_id / "arrivals.json").read_text())
    same = lab.lab("compare", lab.rate_run_id, lab.rate_run_id, "--json", str(tmp_path / "rate.json"))
    assert same.returncode == 0, same.stdout + same.stderr
    comparison = json.loads((tmp_path / "rate.json").read_text())
    assert comparison["clock"] == {"before": "intended start", "after": "intended start"}
    rows = {(r["endpoint"], r["metric"]): r for r in comparison["rows"]}
    # The latencies compared are the verdicts' (arrivals.json), not Locust's CSV; and the drops, overall.
    for endpoint, figures in written["intended"].items():
        assert rows[(endpoint, "p95_seconds")]["after"] == figures["p95_seconds"]
    dropped = rows[("overall", "dropped_ratio")]
    assert dropped["after"] == written["dropped"] / written["arrivals"] > 0
    assert "dropped" in same.stdout
    # Against a closed run: compared, with a warning that the clocks differ.
    mixed = lab.lab("compare", lab.run_id, lab.rate_run_id, "--json", str(tmp_path / "mixed.json"))
    assert "latencies are on different clocks" in mixed.stderr, mixed.stderr
    assert json.loads((tmp_path / "mixed.json").read_text())["clock"]["before"] == "response time"


def test_compare_against_the_saved_baseline(lab):
    saved = lab.lab("compare", "--save-baseline", lab.run_id)
    assert saved.returncode == 0, saved.stderr
    assert lab.lab("compare", lab.run_id).returncode == 0
    assert lab.lab("compare", lab.slow_run_id).returncode == 1


def test_bad_input_is_a_one_line_error(lab):
    unknown = lab.lab("report", "20000101T000000Z-nope")
    assert unknown.returncode == 2 and unknown.stderr.strip().startswith("lab: error: unknown run id")

    empty = lab.results / "20000101T000000Z-empty"
    empty.mkdir()
    record = {"run_id": empty.name, "scenario": "baseline", "host": "", "start": 946684800, "end": 946684860}
    (empty / "run.json").write_text(json.dumps(record))
    unfinished = lab.lab("report", empty.name)
    assert unfinished.returncode == 2 and "locust_stats.csv" in unfinished.stderr
    assert len(unfinished.stderr.strip().splitlines()) == 1

    # Its files, but nothing in Prometheus (retention dropped it): the report says so.
    for name in ("locust_stats.csv", "locust_failures.csv"):
        shutil.copy(lab.results / lab.run_id / name, empty / name)
    nodata = lab.lab("report", empty.name)
    assert nodata.returncode == 0, nodata.stderr
    missing = json.loads((empty / "report.json").read_text())["time_series_missing"]
    assert f"Prometheus has no Locust samples of run {empty.name}" in missing


def test_compare_warns_about_a_run_that_lost_workers(lab):
    # The same run, recorded as having lost a worker (as lab.plugin.runs writes it when one goes missing).
    record = json.loads((lab.results / lab.run_id / "run.json").read_text())
    record["workers_lost"] = [{"worker": "w1", "client_id": "w1_0", "at": record["end"] - 1}]
    lost = lab.results / f"{lab.run_id}-lost"
    lost.mkdir()
    (lost / "run.json").write_text(json.dumps(record))
    shutil.copy(lab.results / lab.run_id / "locust_stats.csv", lost / "locust_stats.csv")
    result = lab.lab("compare", lab.run_id, lost.name, "--json", str(lost / "compare.json"))
    assert result.returncode == 0, result.stderr
    assert f"warning: run {lab.run_id} lost 1 worker(s)" in result.stderr
