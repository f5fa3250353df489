"""A master with many workers, with the lab plugin and without; prints a Markdown section.

First, in-process: the CPU time of the `worker_report` listeners for one report on a master runner
that knows N workers, Locust's alone, with the plugin's, and the plugin's alone.

Then, for each worker count (default 25, 50, 100), two clusters in turn against the fast loopback endpoint
of bench/loadgen.py: plain Locust, then Locust with the lab plugin (its exporter scraped every 5 s,
as Prometheus does). Each worker runs --users users that wait 1 s between requests, so the load
itself is small and the master's work is what its workers send it: a stats report from each worker
every 3 s (Locust's WORKER_REPORT_INTERVAL) and a heartbeat every second.

Over a steady window the master's CPU is read from /proc (psutil); "per report" divides it by the
reports the window held (workers x window / 3 s), heartbeats included. The plugin's own work on a
report is one dict store (lab.plugin.runs records when each worker last reported); its per-second
worker watcher and the exporter's worker families are O(workers) per second and per scrape, not per
report. The difference between the variants at the same worker count is what the plugin costs.

Everything it starts it stops. Usage: python bench/workers.py [--workers 25,50,100] [--seconds 20]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from loadgen import Target, cpu_seconds  # noqa: E402

from tests.support.local_services import free_port, wait_until  # noqa: E402
from tests.support.locust import PLUGIN, LocustProcesses, locust_env  # noqa: E402

REPORT_SECONDS = 3.0  # locust.runners.WORKER_REPORT_INTERVAL
SCRAPE_SECONDS = 5.0
LOCUSTFILE = """
from locust import FastHttpUser, constant, task


class Visitor(FastHttpUser):
    wait_time = constant(1)

    @task
    def read(self):
        self.client.get("/items/1", name="/items/[id]")
"""


class Cluster(LocustProcesses):
    """A headless master and `workers` worker processes; the master stops itself after `bound` s."""

    def __init__(self, workdir: Path, target: Target, workers: int, users: int, plugin: bool, bound: float):
        locustfile = workdir / "workers_locustfile.py"
        locustfile.write_text(LOCUSTFILE)
        args = [
            "-u", str(workers * users), "-r", str(workers * users), "-t", f"{int(bound)}s",
            "--host", target.url, "--only-summary",
        ]  # fmt: skip
        if plugin:
            args += [
                "--scenarios-file",
                str(REPO / "locust/scenarios.yaml"),
                "--slo-file",
                str(REPO / "locust/slo.yaml"),
            ]
        super().__init__(
            workdir,
            [locustfile, PLUGIN] if plugin else [locustfile],
            workers=workers,
            headless=True,
            exporter=plugin,
            args=args,
            env=locust_env(workdir / "results"),
            name="locust",
        )
        self.log = workdir / "locust.log"

    def __enter__(self) -> "Cluster":
        import psutil

        self.start()
        self.master_ps = psutil.Process(self.master.pid)
        return self

    def scrape(self) -> float:
        """Seconds one /metrics scrape took."""
        start = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.exporter_port}/metrics", timeout=30) as r:
            r.read()
        return time.perf_counter() - start


def measure(workdir: Path, target: Target, workers: int, users: int, plugin: bool, seconds: float) -> dict:
    start_bound = 60 + workers * 3  # starting a hundred Python processes takes a while on a small machine
    with Cluster(workdir, target, workers, users, plugin, start_bound + seconds + 30) as cluster:

        def loaded() -> bool:
            if cluster.master.poll() is not None:
                raise RuntimeError(f"the master exited early:\n{cluster.log.read_text()[-2000:]}")
            before = target.served()
            time.sleep(2)
            return (target.served() - before) / 2 > 0.8 * workers * users

        wait_until(loaded, start_bound, interval=0.5, what=f"{workers} workers' users all running")
        time.sleep(REPORT_SECONDS * 2)  # settle: spawning done, reports flowing
        cpu, begin, served = cpu_seconds(cluster.master_ps), time.monotonic(), target.served()
        scrapes = []
        while (left := seconds - (time.monotonic() - begin)) > 0:
            if plugin:
                scrapes.append(cluster.scrape())
            time.sleep(min(SCRAPE_SECONDS, max(left, 0)))
        elapsed = time.monotonic() - begin
        cpu = cpu_seconds(cluster.master_ps) - cpu
        served = target.served() - served
        rss = cluster.master_ps.memory_info().rss
    reports = workers * elapsed / REPORT_SECONDS
    return {
        "workers": workers,
        "variant": "lab" if plugin else "plain Locust",
        "master_cpu_ratio": cpu / elapsed,
        "cpu_per_report_ms": cpu / reports * 1000,
        "requests_per_second": served / elapsed,
        "scrape_ms": statistics.median(scrapes) * 1000 if scrapes else None,
        "master_rss_mib": rss / 1024**2,
    }


def report_data() -> dict:
    """One worker's report as Locust builds it: 10 names with a few requests each, and an error."""
    from locust.stats import RequestStats

    stats = RequestStats()
    for i in range(10):
        for response_time in (3, 8, 20, 45, 120):
            stats.log_request("GET", f"/items/{i}", response_time, 16)
    stats.log_error("GET", "/items/3", "HTTPError('503 Server Error')")
    return {
        "stats": stats.serialize_stats(),
        "stats_total": stats.total.get_stripped_report(),
        "errors": stats.serialize_errors(),
        "user_classes_count": {"Visitor": 2},
        "user_count": 2,
    }


def report_handling(counts: list[int], reports: int = 2000, repeats: int = 5) -> list[dict]:
    """CPU time of the worker_report listeners for one report, in-process, on a master with N workers
    known to it: Locust's own (stats merge, user counts), with the plugin's, and the plugin's alone."""
    import importlib

    from locust import User, task
    from locust.env import Environment
    from locust.event import Events
    from locust.runners import WorkerNode

    from lab.plugin import PLUGIN_MODULES

    class Visitor(User):
        @task
        def read(self):
            pass

    def per_report(events: Events, ids: list[str], data: dict) -> float:
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            for k in range(reports):
                events.worker_report.fire(client_id=ids[k % len(ids)], data=data)
            best = min(best, (time.process_time() - start) / reports)
        return best * 1e6

    rows = []
    for workers in counts:
        ids = [f"worker-{i}_{i:032x}" for i in range(workers)]
        timings = {}
        for variant in ("plain Locust", "lab", "plugin alone"):
            events = Events()
            if variant != "plain Locust":
                for name in PLUGIN_MODULES:
                    importlib.import_module(name).register(events)
            runner = None
            if variant != "plugin alone":  # a master runner adds Locust's listeners
                env = Environment(user_classes=[Visitor], events=events)
                runner = env.create_master_runner("127.0.0.1", free_port())
                for client_id in ids:  # what the master knows of its workers; none is started
                    runner.clients[client_id] = WorkerNode(client_id)
            timings[variant] = per_report(events, ids, report_data())
            if runner is not None:
                runner.greenlet.kill(block=True)
                runner.server.close()
        rows.append({"workers": workers, **timings})
    return rows


def markdown(args, results: list[dict], load: tuple[tuple, tuple], handling: list[dict]) -> str:
    lines = [
        "## A master with many workers",
        "",
        f"`python bench/workers.py --workers {','.join(map(str, args.workers))} --seconds {args.seconds:g} "
        f"--users {args.users}`: for each worker count, plain Locust then Locust with the lab plugin, "
        f"{args.users} users a worker (1 request/s each) against the fast loopback endpoint; the master's "
        f"CPU over {args.seconds:g} s of steady load, the lab's exporter scraped every {SCRAPE_SECONDS:g} s. "
        "CPU per report is the master's CPU over the reports the window held (one per worker every "
        f"{REPORT_SECONDS:g} s), heartbeats and scrapes included. Load average before / after: "
        f"{load[0][0]:.1f} / {load[1][0]:.1f} on {os.cpu_count()} cores (shared).",
        "",
        "| workers | variant | master CPU | master CPU per report (ms) | requests/s | scrape (ms) | master RSS (MiB) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        scrape = f"{r['scrape_ms']:.0f}" if r["scrape_ms"] is not None else "-"
        lines.append(
            f"| {r['workers']} | {r['variant']} | {r['master_cpu_ratio']:.1%} | {r['cpu_per_report_ms']:.2f} "
            f"| {r['requests_per_second']:,.0f} | {scrape} | {r['master_rss_mib']:.0f} |"
        )
    lines += [
        "",
        "Handling one report, in-process: CPU time of the `worker_report` listeners (the best of 5 x 2,000 "
        "reports of 10 names), on a master runner that knows N workers (none started; the report is what a "
        "worker sends).",
        "",
        "| workers | Locust's listeners (µs) | with the plugin's (µs) | the plugin's alone (µs) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for h in handling:
        lines.append(
            f"| {h['workers']} | {h['plain Locust']:.0f} | {h['lab']:.0f} | {h['plugin alone']:.1f} |"
        )
    lines += ["", "| workers | lab − plain, master CPU | target |", "| ---: | ---: | --- |"]
    for workers in args.workers:
        pair = {r["variant"]: r for r in results if r["workers"] == workers}
        if len(pair) == 2:
            points = (pair["lab"]["master_cpu_ratio"] - pair["plain Locust"]["master_cpu_ratio"]) * 100
            target = "within 2 points" if workers == 100 else "-"
            lines.append(f"| {workers} | {points:+.1f} points | {target} |")
    return "\n".join(lines) + "\n"


def worker_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or any(not 1 <= n <= 200 for n in counts):
        raise argparse.ArgumentTypeError(
            f"{text!r}: use comma-separated worker counts from 1 to 200, e.g. 25,50,100"
        )
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=worker_counts, default=[25, 50, 100])
    parser.add_argument("--users", type=int, default=2, help="users a worker (default 2)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds a cluster (default 20)")
    parser.add_argument("--json", type=Path, help="also write the figures here, as JSON")
    args = parser.parse_args()
    if args.users < 1 or not 6 <= args.seconds <= 300:
        parser.error("--users must be at least 1 and --seconds between 6 and 300")
    handling = report_handling(args.workers)
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="lab-bench-workers-") as tmp, Target() as target:
        for workers in args.workers:
            for plugin in (False, True):
                print(f"workers: {workers}, {'lab' if plugin else 'plain'}", file=sys.stderr, flush=True)
                results.append(measure(Path(tmp), target, workers, args.users, plugin, args.seconds))
    print(markdown(args, results, (load_before, os.getloadavg()), handling))
    if args.json:
        args.json.write_text(json.dumps({"clusters": results, "report_handling": handling}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
