"""A real Locust master with two real worker processes against a loopback HTTP server.

The exporter's figures are checked against Locust's own (its stats CSV, written by lab.plugin.runs with
Locust's CSV writer), and the histogram's quantile is computed by a real Prometheus scraping it.
"""

import csv
import json
import os
import signal
import threading
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from lab.plugin.exporter import DEFAULT_BUCKETS
from tests.integration.exporter_target import serve
from tests.support.local_services import PrometheusServer, promtool, wait_until
from tests.support.locust import LocustProcesses

HERE = Path(__file__).parent
REPO = HERE.parent.parent
LOCUSTFILE = HERE / "exporter_locustfile.py"


@pytest.fixture
def target():
    server = serve()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class Locust(LocustProcesses):
    """A Locust master (or local runner) with web UI and exporter, plus worker processes."""

    def __init__(
        self,
        workdir: Path,
        host: str,
        user_class: str,
        workers: int,
        extra: tuple[str, ...] = (),
        locustfile: Path = LOCUSTFILE,
    ):
        self.results = workdir / "results"
        super().__init__(
            workdir,
            [locustfile],
            workers=workers,
            web=True,
            exporter=True,
            args=["--host", host, *extra, user_class],
        )
        self.start()

    def scrape(self) -> dict[str, list]:
        """{sample name: [(labels, value)]} of one /metrics exposition."""
        samples: dict[str, list] = {}
        text = requests.get(self.metrics_url, timeout=5).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples.setdefault(s.name, []).append((s.labels, s.value))
        return samples

    def value(self, sample: str, samples=None, **labels) -> float:
        samples = samples if samples is not None else self.scrape()
        return sum(v for lab, v in samples.get(sample, []) if all(lab.get(k) == w for k, w in labels.items()))

    def run(self) -> dict:
        response = requests.get(f"{self.web_url}/lab/run", timeout=5)
        response.raise_for_status()
        return response.json()

    def swarm(self, users: int) -> None:
        response = requests.post(
            f"{self.web_url}/swarm", data={"user_count": users, "spawn_rate": users}, timeout=5
        )
        assert response.json()["success"], response.text

    def stop_test(self) -> dict:
        requests.post(f"{self.web_url}/stop", timeout=5).raise_for_status()
        return wait_until(lambda: (r := self.run())["state"] == "ended" and r, 30, 0.2, "run results written")


@pytest.fixture
def cluster(tmp_path, target):
    started = []

    def start(user_class="Shopper", workers=2, extra=()):
        locust = Locust(tmp_path, target, user_class, workers, extra)
        started.append(locust)
        wait_until(lambda: locust.value("locust_workers", state="ready") == workers or not workers, 30, 0.2)
        return locust

    yield start
    for locust in started:
        locust.stop()


def prometheus_scraping(target_port: int) -> PrometheusServer:
    config = f"global: {{scrape_interval: 1s}}\nscrape_configs: [{{job_name: locust, static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]}}]\n"
    return PrometheusServer(config).start()


def read_stats_csv(path: Path) -> dict[tuple[str, str], dict]:
    with open(path, newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f) if row["Name"] != "Aggregated"}


def bucket_index(seconds: float) -> int:
    """Which histogram bucket (le boundary index) holds a value."""
    import bisect

    return bisect.bisect_left(DEFAULT_BUCKETS, seconds)


def test_exporter_agrees_with_locusts_own_stats_with_two_workers(cluster, tmp_path):
    locust = cluster()
    prometheus = prometheus_scraping(locust.exporter_port)
    try:
        locust.swarm(8)
        wait_until(
            lambda: locust.value("locust_workers", state="running") == 2, 30, 0.2, "both workers running"
        )
        assert locust.value("locust_workers", state="running") == 2
        per_worker = [lab for lab, v in locust.scrape()["locust_worker_state"] if v == 1]
        assert sorted(lab["worker"] for lab in per_worker) == [f"{os.uname().nodename}/{i}" for i in (0, 1)]
        assert {lab["host"] for lab in per_worker} == {os.uname().nodename}
        run_id = locust.run()["run_id"]
        wait_until(
            lambda: locust.value("locust_requests_total", run_id=run_id) >= 400, 40, 0.2, "400 requests"
        )
        run = locust.stop_test()
        samples = locust.scrape()
        stats = read_stats_csv(Path(run["results_dir"]) / "locust_stats.csv")

        exported = {
            (lab["method"], lab["name"]): v
            for lab, v in samples["locust_requests_total"]
            if lab["run_id"] == run_id
        }
        assert exported == {key: int(row["Request Count"]) for key, row in stats.items()}
        for (method, name), row in stats.items():
            labels = {"run_id": run_id, "method": method, "name": name}
            count = locust.value("locust_request_duration_seconds_count", samples, **labels)
            assert count == int(row["Request Count"])
            assert locust.value("locust_request_failures_total", samples, **labels) == int(
                row["Failure Count"]
            )
        assert locust.value("locust_errors_total", samples, name="/fail/[id]") == int(
            stats[("GET", "/fail/[id]")]["Failure Count"]
        )
        # The master's own process metrics, for the soak dashboard and report.
        assert locust.value("process_resident_memory_bytes", samples) > 0

        # Prometheus computes the quantile from the buckets it scraped (once it has the final counts).
        total = sum(exported.values())
        wait_until(
            lambda: prometheus.query(f'sum(locust_requests_total{{run_id="{run_id}"}}) == {total}'),
            30,
            0.5,
            "prometheus has the final counts",
        )
        result = prometheus.query(
            f'histogram_quantile(0.95, sum by (name, le) (locust_request_duration_seconds_bucket{{run_id="{run_id}"}}))'
        )
        quantiles = {r["metric"]["name"]: float(r["value"][1]) for r in result}
        assert set(quantiles) == {name for _method, name in stats}
        for (_method, name), row in stats.items():
            locust_p95 = int(row["95%"]) / 1000
            assert abs(bucket_index(quantiles[name]) - bucket_index(locust_p95)) <= 1, (
                name,
                quantiles,
                locust_p95,
            )
    finally:
        prometheus.stop()

    # The exposition passes Prometheus' own lint.
    lint = promtool("check", "metrics", stdin=requests.get(locust.metrics_url, timeout=5).text)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_reset_starts_a_new_run_and_a_lost_worker_is_seen_and_recorded(cluster):
    locust = cluster()
    locust.swarm(6)
    first = wait_until(lambda: (r := locust.run())["state"] == "running" and r, 30, 0.2)["run_id"]
    wait_until(lambda: locust.value("locust_requests_total", run_id=first) >= 100, 40, 0.2)

    requests.post(f"{locust.web_url}/stats/reset", timeout=5).raise_for_status()
    second = locust.run()["run_id"]
    assert second != first
    samples = locust.scrape()
    assert {
        lab["run_id"] for name, series in samples.items() if name.startswith("locust_") for lab, _ in series
    } == {second}
    first_record = json.loads((locust.results / first / "run.json").read_text())
    assert first_record["end"] is not None and (locust.results / first / "locust_stats.csv").exists()

    wait_until(lambda: locust.value("locust_requests_total", run_id=second) >= 100, 40, 0.2)
    locust.workers[0].send_signal(signal.SIGKILL)
    scrapes = []

    def missing():
        scrapes.append(locust.scrape())
        return locust.value("locust_workers", scrapes[-1], state="missing") == 1

    # Locust marks a worker missing after HEARTBEAT_LIVENESS (3) missed 1 s heartbeats.
    wait_until(missing, 20, 0.5, "the killed worker marked missing")
    scrapes.append(locust.scrape())
    for earlier, later in zip(scrapes, scrapes[1:], strict=False):
        for sample in (
            "locust_requests_total",
            "locust_request_failures_total",
            "locust_request_duration_seconds_count",
        ):
            before = {tuple(sorted(lab.items())): v for lab, v in earlier[sample]}
            after = {tuple(sorted(lab.items())): v for lab, v in later[sample]}
            assert all(after[key] >= value for key, value in before.items()), sample
    assert locust.value("locust_workers", state="running") == 1

    run = locust.stop_test()
    record = json.loads((Path(run["results_dir"]) / "run.json").read_text())
    assert record["run_id"] == second and record["invalidated"] is True
    assert [lost["client_id"].split("_")[0] for lost in record["workers_lost"]] == [os.uname().nodename]
    assert run["invalidated"] is True


def test_thousands_of_distinct_urls_stay_under_the_name_bound(cluster):
    locust = cluster(user_class="Crawler", workers=0, extra=("--exporter-max-names", "50"))
    locust.swarm(4)
    wait_until(
        lambda: locust.value("locust_exporter_folded_total", kind="name") >= 2000,
        45,
        0.5,
        "2000 names folded",
    )
    run = locust.stop_test()
    samples = locust.scrape()
    names = {lab["name"] for lab, _ in samples["locust_requests_total"]}
    assert len(names) == 51 and "other" in names
    for sample in (
        "locust_requests_total",
        "locust_request_duration_seconds_count",
        "locust_response_size_bytes_total",
    ):
        assert len(samples[sample]) == 51
    assert len(samples["locust_request_duration_seconds_bucket"]) == 51 * (len(DEFAULT_BUCKETS) + 1)
    stats = read_stats_csv(Path(run["results_dir"]) / "locust_stats.csv")
    assert len(stats) > 2000  # Locust itself keeps every URL
    assert sum(v for _, v in samples["locust_requests_total"]) == sum(
        int(r["Request Count"]) for r in stats.values()
    )
    assert locust.value("locust_exporter_folded_total", samples, kind="name") == len(stats) - 50


def test_a_headless_run_leaves_the_same_figures_as_locusts_own_final_stats(tmp_path, target):
    """Headless, the master quits right after the test stops: lab.plugin.runs' results must still hold the
    workers' final reports, like the stats Locust itself dumps at exit (--json-file)."""
    locust = LocustProcesses(
        tmp_path,
        [LOCUSTFILE],
        workers=2,
        headless=True,
        args=[
            "-u", "6", "-r", "6", "-t", "4s", "--host", target,
            "--exporter-port", "0", "--json-file", str(tmp_path / "own"), "Shopper",
        ],
    )  # fmt: skip
    with locust:
        locust.wait(timeout=60)
    (run_dir,) = (tmp_path / "results").iterdir()
    ours = read_stats_csv(run_dir / "locust_stats.csv")
    own = {(e["method"], e["name"]): e for e in json.loads((tmp_path / "own.json").read_text())}
    assert {k: int(r["Request Count"]) for k, r in ours.items()} == {
        k: e["num_requests"] for k, e in own.items()
    }
    assert {k: int(r["Failure Count"]) for k, r in ours.items()} == {
        k: e["num_failures"] for k, e in own.items()
    }
    assert sum(int(r["Request Count"]) for r in ours.values()) > 0
    record = json.loads((run_dir / "run.json").read_text())
    assert record["end"] > record["start"] and record["invalidated"] is False
