"""Scrape cost of the Locust exporter; prints a Markdown section.

1. Master CPU per scrape of /metrics for 50, 200 and 1000 request names with realistic
   response-time spreads: the exporter as it was (tests/support/exporter_reference.py, every family
   rebuilt through `generate_latest`) and as it is, side by side on the same stats.
2. A live check on loopback, in one run of a real master and one worker against a local HTTP
   server: windows without scraping alternate with windows scraping /metrics at 4 Hz; worker
   requests/s (counted by the target) and master CPU per window.

Usage: python bench/exporter.py [--quick] [--json FILE]   (--quick skips the live part)
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NAME_COUNTS = (50, 200, 1000)
SAMPLES_PER_NAME = 400
REPEATS = 25
LIVE_USERS = 10
LIVE_ROUNDS = 2
LIVE_WINDOW_SECONDS = 5.0
SCRAPE_HZ = 4


def local_environment():
    """An in-process Locust environment with a local runner and a user class that sends nothing: stats
    filled by the benchmark itself."""
    from locust import User, task
    from locust.env import Environment
    from locust.event import Events

    class Visitor(User):
        @task
        def idle(self):
            pass

    env = Environment(user_classes=[Visitor], events=Events(), host="http://127.0.0.1")
    env.create_local_runner()
    return env


def populated_environment(names: int):
    """An in-process Locust environment whose stats hold `names` endpoints and a run."""
    from lab.plugin import runs

    env = local_environment()
    rng = random.Random(names)
    for i in range(names):
        median_ms = rng.choice((4, 12, 40, 150, 600))
        for _ in range(SAMPLES_PER_NAME):
            env.stats.log_request("GET", f"/endpoint/{i}", rng.lognormvariate(0, 0.8) * median_ms, 512)
        if i % 10 == 0:
            env.stats.log_error("GET", f"/endpoint/{i}", f"HTTPError('503 Server Error for id {i}')")
    runs.start_run(env)
    return env


def render_costs(names: int) -> dict:
    """CPU per scrape of the exporter as it was (the reference) and as it is, on the same stats.

    Before each timed scrape of the "changed" rounds, every name gets one more request (the most a
    scrape can have to redo); the "unchanged" rounds scrape again with nothing new.
    """
    from lab.plugin.exporter import LocustCollector
    from tests.support.exporter_reference import ReferenceCollector, reference_exposition

    env = populated_environment(names)
    reference = ReferenceCollector(env, max_names=names)
    collector = LocustCollector(env, max_names=names)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    body = collector.exposition()
    kept = sum(d.size_diff for d in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    old, new, unchanged = [], [], []
    for repeat in range(REPEATS):
        for i in range(names):
            env.stats.log_request("GET", f"/endpoint/{i}", 5 + repeat % 40, 512)
        # The reference rebuilds everything whatever changed; the exporter scrapes first, so it sees
        # every name changed, then once more with nothing new.
        for cpu in (new, unchanged):
            c0 = time.process_time()
            collector.exposition()
            cpu.append(time.process_time() - c0)
        c0 = time.process_time()
        reference_exposition(reference)
        old.append(time.process_time() - c0)
    env.runner.quit()
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return {
        "names": names,
        "series": series,
        "bytes": len(body),
        "old_cpu_ms": statistics.median(old) * 1000,
        "new_cpu_ms": statistics.median(new) * 1000,
        "unchanged_cpu_ms": statistics.median(unchanged) * 1000,
        "kept_mib": (kept - len(body)) / 1024**2,  # what the exporter holds between scrapes
    }


def live_costs(server) -> list[dict]:
    """One real master (exporter on) and one worker for the whole comparison; measurement windows
    alternate between no scraping and scraping at SCRAPE_HZ, so both see the same conditions."""
    import psutil
    import requests

    from tests.support.locust import LocustProcesses

    locustfile = REPO / "tests" / "integration" / "exporter_locustfile.py"
    target = f"http://127.0.0.1:{server.server_address[1]}"
    locust = LocustProcesses(
        Path(tempfile.mkdtemp()),
        [locustfile],
        workers=1,
        web=True,
        exporter=True,
        args=["--host", target, "Shopper"],
        stdout=subprocess.DEVNULL,
    )
    metrics, web = locust.metrics_url, locust.web_url
    windows = []
    with locust:
        locust.wait_ready(30)
        requests.post(f"{web}/swarm", data={"user_count": LIVE_USERS, "spawn_rate": LIVE_USERS}, timeout=5)
        time.sleep(3)  # ramp-up
        process = psutil.Process(locust.master.pid)
        for scraping in (False, True) * LIVE_ROUNDS:
            served, cpu, start = server.served, sum(process.cpu_times()[:2]), time.monotonic()
            scrapes = 0
            while time.monotonic() - start < LIVE_WINDOW_SECONDS:
                if scraping:
                    requests.get(metrics, timeout=5).raise_for_status()
                    scrapes += 1
                time.sleep(1 / SCRAPE_HZ)
            elapsed = time.monotonic() - start
            windows.append(
                {
                    "scraping": scraping,
                    "rps": (server.served - served) / elapsed,
                    "cpu": sum(process.cpu_times()[:2]) - cpu,
                    "scrapes": scrapes,
                }
            )
        requests.post(f"{web}/stop", timeout=5)
    return windows


def live_section() -> list[str]:
    from tests.integration.exporter_target import serve

    server = serve()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        windows = live_costs(server)
    finally:
        server.shutdown()
        server.server_close()
    lines = [
        "",
        f"Live, loopback, one run: a master and one worker, {LIVE_USERS} users against a local HTTP server; "
        f"{LIVE_ROUNDS} pairs of {LIVE_WINDOW_SECONDS:g} s windows alternate no scraping and scraping "
        f"/metrics at {SCRAPE_HZ} Hz ({SCRAPE_HZ * 15}x a 15 s scrape interval). Requests/s as served by the target.",
        "",
        "| window | worker requests/s | master CPU (s) | scrapes | master CPU per scrape (ms) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    idle_cpu = statistics.mean(w["cpu"] for w in windows if not w["scraping"])
    for i, w in enumerate(windows, 1):
        per_scrape = f"{(w['cpu'] - idle_cpu) / w['scrapes'] * 1000:.1f}" if w["scrapes"] else "-"
        label = "scraped" if w["scraping"] else "not scraped"
        lines.append(f"| {i}: {label} | {w['rps']:.0f} | {w['cpu']:.2f} | {w['scrapes']} | {per_scrape} |")
    return lines


TARGET_MS = {200: 10.0, 1000: 50.0}  # issue 19: ten times cheaper than the exporter before it


def section(quick: bool = False, json_path: str | None = None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LAB_RESULTS_DIR"] = tmp  # the runs the render benchmark starts write here
        renders = [render_costs(n) for n in NAME_COUNTS]
    lines = [
        "## Locust exporter scrape cost",
        "",
        f"Master CPU per scrape (`time.process_time`, the median of {REPEATS}), {SAMPLES_PER_NAME} samples "
        "a name, one process. *Before*: the exporter as it was (tests/support/exporter_reference.py: "
        "every family rebuilt and rendered by prometheus_client's `generate_latest`). *Now*: "
        "`LocustCollector.exposition()`, what /metrics serves, scraped after every name got one more "
        "request (each row redone) and again with nothing new (the rendered rows reused). Both give the "
        "same parsed samples (tests/unit/test_exporter_golden.py). The rows the exporter keeps between scrapes "
        "(rendered text, label strings, bucket keys) cost master memory: the last column (tracemalloc).",
        "",
        "| names | series | bytes | before (ms) | now, every name changed (ms) | now, nothing changed (ms) "
        "| target | before / now | kept between scrapes (MiB) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in renders:
        target = TARGET_MS.get(r["names"])
        lines.append(
            f"| {r['names']} | {r['series']:,} | {r['bytes']:,} | {r['old_cpu_ms']:.1f} | {r['new_cpu_ms']:.1f} "
            f"| {r['unchanged_cpu_ms']:.1f} | {f'≤ {target:g} ms' if target else '-'} "
            f"| {r['old_cpu_ms'] / r['new_cpu_ms']:.1f}x | {r['kept_mib']:.1f} |"
        )
    lines += [
        "",
        f"Load average while it ran: {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min) "
        f"on {os.cpu_count()} cores; CPU time, unlike wall time, does not count the waits this causes.",
    ]
    if json_path:
        Path(json_path).write_text(json.dumps({"renders": renders, "targets_ms": TARGET_MS}))
    if not quick:
        lines += live_section()
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the live master/worker comparison")
    parser.add_argument("--json", help="also write the render figures to this file (for bench/run.py)")
    args = parser.parse_args()
    print(section(args.quick, args.json))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
