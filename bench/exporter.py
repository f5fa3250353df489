"""Scrape cost of the Locust exporter; prints a Markdown section.

1. Render time of /metrics (`generate_latest` on the exporter's registry) for 50, 200 and 1000
   request names with realistic response-time spreads, and the CPU time one render takes (what the
   master spends per scrape).
2. A live check on loopback: a real master and one worker against a local HTTP server, once with
   the exporter off and once with it on and scraped every second: worker requests/s and master CPU.

Usage: python bench/exporter.py [--quick]   (--quick skips the live part)
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NAME_COUNTS = (50, 200, 1000)
SAMPLES_PER_NAME = 400
REPEATS = 25
LIVE_SECONDS = 8.0
LIVE_USERS = 10


def populated_environment(names: int):
    """An in-process Locust environment whose stats hold `names` endpoints and a run."""
    from locust.env import Environment
    from locust.event import Events

    from lab import runs
    from locust import User, task

    class Visitor(User):
        @task
        def idle(self):
            pass

    env = Environment(user_classes=[Visitor], events=Events(), host="http://127.0.0.1")
    env.create_local_runner()
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
    from prometheus_client import CollectorRegistry, generate_latest

    from lab.exporter import LocustCollector

    env = populated_environment(names)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LocustCollector(env, max_names=names))
    body = generate_latest(registry)
    wall, cpu = [], []
    for _ in range(REPEATS):
        w0, c0 = time.perf_counter(), time.process_time()
        generate_latest(registry)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    env.runner.quit()
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return {
        "names": names,
        "series": series,
        "bytes": len(body),
        "min_ms": min(wall) * 1000,
        "median_ms": statistics.median(wall) * 1000,
        "cpu_ms": statistics.median(cpu) * 1000,
    }


def live_round(workdir: Path, target: str, exporter_on: bool) -> dict:
    """A real master + worker for LIVE_SECONDS; scrapes /metrics every second when the exporter is on."""
    import psutil
    import requests

    from tests.support.local_services import free_port, wait_until

    locustfile = REPO / "tests" / "integration" / "exporter_locustfile.py"
    web_port, master_port, exporter_port = free_port(), free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "LAB_RESULTS_DIR": str(workdir / "results")}
    common = [sys.executable, "-m", "locust", "-f", str(locustfile)]
    master = subprocess.Popen(
        [
            *common, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port),
            "--web-host", "127.0.0.1", "--web-port", str(web_port), "--host", target,
            "--exporter-port", str(exporter_port if exporter_on else 0), "--exporter-host", "127.0.0.1",
            "Shopper",
        ],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker = subprocess.Popen(
        [*common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    web = f"http://127.0.0.1:{web_port}"
    try:

        def total_requests() -> int:
            stats = requests.get(f"{web}/stats/requests", timeout=5).json()["stats"]
            return next(s["num_requests"] for s in stats if s["name"] == "Aggregated")

        wait_until(
            lambda: requests.get(f"{web}/stats/requests", timeout=1).json()["worker_count"] == 1, 30, 0.2
        )
        requests.post(f"{web}/swarm", data={"user_count": LIVE_USERS, "spawn_rate": LIVE_USERS}, timeout=5)
        time.sleep(4)  # ramp-up and the first worker reports
        process = psutil.Process(master.pid)
        start_requests, start_cpu, start = total_requests(), sum(process.cpu_times()[:2]), time.monotonic()
        scrapes = 0
        while time.monotonic() - start < LIVE_SECONDS:
            if exporter_on:
                requests.get(f"http://127.0.0.1:{exporter_port}/metrics", timeout=5).raise_for_status()
                scrapes += 1
            time.sleep(1)
        elapsed = time.monotonic() - start
        cpu = sum(process.cpu_times()[:2]) - start_cpu
        rps = (total_requests() - start_requests) / elapsed
        requests.post(f"{web}/stop", timeout=5)
        return {
            "exporter": "on" if exporter_on else "off",
            "rps": rps,
            "master_cpu_s": cpu,
            "scrapes": scrapes,
        }
    finally:
        for process in (worker, master):
            process.terminate()
        for process in (worker, master):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def live_costs() -> list[dict]:
    from tests.integration.exporter_target import serve

    server = serve()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return [live_round(Path(tmp), target, on) for on in (False, True)]
    finally:
        server.shutdown()
        server.server_close()


def section(quick: bool = False) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LAB_RESULTS_DIR"] = tmp  # the runs the render benchmark starts write here
        renders = [render_costs(n) for n in NAME_COUNTS]
    lines = [
        "## Locust exporter scrape cost",
        "",
        f"`generate_latest` on the exporter's registry, {REPEATS} repeats, {SAMPLES_PER_NAME} samples a name "
        "(one process; CPU is what the master spends per scrape).",
        "",
        "| names | series | bytes | render min (ms) | render median (ms) | CPU per scrape (ms) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in renders:
        lines.append(
            f"| {r['names']} | {r['series']} | {r['bytes']} | {r['min_ms']:.1f} | {r['median_ms']:.1f} "
            f"| {r['cpu_ms']:.1f} |"
        )
    if not quick:
        lines += [
            "",
            f"Live, loopback: one master and one worker, {LIVE_USERS} users against a local HTTP server, "
            f"{LIVE_SECONDS:g} s measured; exporter scraped every second when on.",
            "",
            "| exporter | worker requests/s | master CPU (s) | scrapes |",
            "| --- | ---: | ---: | ---: |",
        ]
        for r in live_costs():
            lines.append(f"| {r['exporter']} | {r['rps']:.0f} | {r['master_cpu_s']:.2f} | {r['scrapes']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the live master/worker comparison")
    print(section(parser.parse_args().quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
