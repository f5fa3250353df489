"""The compose stack's own costs; prints a Markdown section (and --json for bench/run.py).

Runs the lab as its own compose project (loadlab-bench, its own ports, .env and results folder in a
temp dir, the offline images, which must be built: `make images-offline`):

1. `lab up` on fresh volumes, timed until every service is healthy (it waits for that itself);
2. the idle stack's memory, per container, from `docker stats --no-stream`, then what the system
   exporters (node-exporter, process-exporter) cost on it over an idle window: their containers' CPU
   (the engine's cumulative CPU time, healthchecks included), their processes' resident memory, and the
   series and scrape time of their Prometheus jobs;
3. a bounded run of the default scenario (`lab run baseline`, 20 users, with a shorter hold), then
   Prometheus's series and the growth of its on-disk data over the run, extrapolated to an hour;
4. `lab down` (volumes kept), `lab up` again on the kept volumes, and `lab down --volumes`, timed.

Everything it starts it removes (`lab down --volumes`, also on failure or Ctrl-C).
Usage: python bench/stack.py [--hold 3m] [--idle SECONDS] [--quick]
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parent.parent
PROJECT = "loadlab-bench"
PORTS = {"GRAFANA_PORT": "13400", "LOCUST_WEB_PORT": "18489", "PROMETHEUS_PORT": "19490"}
SETTLE_SECONDS = 20
# The system profile's exporters and their Prometheus jobs.
SYSTEM_EXPORTERS = {"node-exporter": "node", "process-exporter": "process"}
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1e3, "MB": 1e6, "GB": 1e9}


class Stack:
    def __init__(self, workdir: Path) -> None:
        self.env = {
            **os.environ,
            **PORTS,
            "LAB_HOME": str(REPO),
            "LAB_PROJECT": PROJECT,
            "LAB_ENV_FILE": str(workdir / ".env"),
            "LAB_RESULTS_DIR": str(workdir / "results"),
            "LAB_OFFLINE": "1",
            "LOCUST_WORKERS": "2",
        }
        self.log = workdir / "lab.log"
        self.prometheus = f"http://127.0.0.1:{PORTS['PROMETHEUS_PORT']}"

    def lab(self, *args: str, timeout: float = 900, ok=(0,)) -> float:
        """Run `python -m lab ARGS`; returns its wall time in seconds."""
        start = time.monotonic()
        with self.log.open("a") as log:
            log.write(f"\n$ lab {' '.join(args)}\n")
            log.flush()
            # Its own session: a Ctrl-C reaches it only through us, after which we wait for it to stop.
            process = subprocess.Popen(
                [sys.executable, "-m", "lab", *args],
                env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            try:
                code = process.wait(timeout)
            except BaseException:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                raise
        if code not in ok:
            tail = "\n".join(self.log.read_text().splitlines()[-30:])
            raise RuntimeError(f"lab {' '.join(args)} exited {code}:\n{tail}")
        return time.monotonic() - start

    def containers(self, service: str | None = None) -> list[str]:
        command = ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"]
        if service:
            command += ["--filter", f"label=com.docker.compose.service={service}"]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()

    def memory(self) -> dict[str, float]:
        """Bytes of memory in use, per container name."""
        out = subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *self.containers()],
            capture_output=True, text=True, check=True, timeout=120,
        ).stdout  # fmt: skip
        usage = {}
        for line in out.splitlines():
            name, mem = line.split("\t")
            value, unit = re.match(r"([\d.]+)\s*([A-Za-z]+)", mem.split("/")[0].strip()).groups()
            usage[name.removeprefix(f"{PROJECT}-")] = float(value) * UNITS[unit]
        return usage

    def instant(self, promql: str) -> list:
        url = f"{self.prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())["data"]["result"]

    def query(self, promql: str) -> float:
        result = self.instant(promql)
        return float(result[0]["value"][1]) if result else 0.0

    def exporter_cost(self, seconds: float) -> dict[str, dict]:
        """Per system exporter: CPU in cores averaged over `seconds` (the container's cumulative CPU time
        from the engine, its healthchecks included), its process's resident memory, and its job's series
        and mean scrape duration over that window."""
        client = docker.from_env()
        containers = {name: client.containers.get(self.containers(name)[0]) for name in SYSTEM_EXPORTERS}

        def cpu_seconds() -> dict[str, float]:
            return {
                name: c.stats(stream=False, one_shot=True)["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
                for name, c in containers.items()
            }

        before, started = cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        after, elapsed = cpu_seconds(), time.monotonic() - started
        series = self.series_by_job()
        window = f"{int(elapsed)}s"
        cost = {}
        for name, container in containers.items():
            container.reload()
            job = SYSTEM_EXPORTERS[name]
            status = Path(f"/proc/{container.attrs['State']['Pid']}/status").read_text()
            rss_kib = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)[1])
            cost[name] = {
                "job": job,
                "cores": (after[name] - before[name]) / elapsed,
                "rss_bytes": rss_kib * 1024,
                "series": series.get(job, 0),
                "scrape_s": self.query(f'avg_over_time(scrape_duration_seconds{{job="{job}"}}[{window}])'),
            }
        return {
            "seconds": elapsed,
            "host_processes": sum(p.name.isdigit() for p in Path("/proc").iterdir()),
            "exporters": cost,
        }

    def series_by_job(self) -> dict[str, int]:
        result = self.instant('count by (job) ({job!=""})')
        return {r["metric"].get("job", "?"): int(float(r["value"][1])) for r in result}

    def prometheus_disk(self) -> dict[str, int]:
        """Bytes under /prometheus in the container: the WAL and everything (blocks, chunks_head)."""
        (container,) = self.containers("prometheus")
        out = subprocess.run(
            ["docker", "exec", container, "du", "-b", "--max-depth=1", "/prometheus"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        sizes = {path: int(size) for size, path in (line.split("\t") for line in out.splitlines())}
        return {"total": sizes["/prometheus"], "wal": sizes.get("/prometheus/wal", 0)}

    def tsdb(self) -> dict:
        return {
            "time": time.time(),
            "head_series": self.query("prometheus_tsdb_head_series"),
            "samples": self.query("prometheus_tsdb_head_samples_appended_total")
            or self.query("sum(prometheus_tsdb_head_samples_appended_total)"),
            **self.prometheus_disk(),
        }


def measure(stack: Stack, hold: str, idle: float, quick: bool) -> dict:
    figures: dict = {"hold": hold}
    print("stack: lab up (fresh volumes)", file=sys.stderr)
    figures["up_fresh_s"] = stack.lab("up")
    time.sleep(SETTLE_SECONDS)
    figures["idle_memory"] = stack.memory()
    print(f"stack: the system exporters' cost, idle, over {idle:.0f} s", file=sys.stderr)
    figures["system_exporters"] = stack.exporter_cost(idle)
    before = stack.tsdb()
    print(f"stack: lab run baseline --duration {hold}", file=sys.stderr)
    started = time.monotonic()
    # 0: every objective passed, 1: one failed; either is a finished run.
    stack.lab("run", "baseline", "--duration", hold, timeout=1800, ok=(0, 1))
    figures["run_s"] = time.monotonic() - started
    time.sleep(12)  # two scrape intervals, so the run's last samples are in
    after = stack.tsdb()
    figures["series_by_job"] = stack.series_by_job()
    figures["tsdb_before"], figures["tsdb_after"] = before, after
    figures["samples_per_s"] = stack.query("sum(rate(prometheus_tsdb_head_samples_appended_total[1m]))")
    print("stack: lab down", file=sys.stderr)
    figures["down_s"] = stack.lab("down")
    if not quick:
        print("stack: lab up (kept volumes)", file=sys.stderr)
        figures["up_warm_s"] = stack.lab("up")
    return figures


def mib(value: float) -> str:
    return f"{value / 1024**2:,.0f}"


def markdown(f: dict) -> str:
    before, after = f["tsdb_before"], f["tsdb_after"]
    seconds = after["time"] - before["time"]
    wal_per_hour = (after["wal"] - before["wal"]) / seconds * 3600
    total_per_hour = (after["total"] - before["total"]) / seconds * 3600
    samples_per_s = f["samples_per_s"]
    measured_bytes_per_sample = (after["wal"] - before["wal"]) / max(after["samples"] - before["samples"], 1)
    memory = f["idle_memory"]
    lines = [
        "## The stack",
        "",
        f"The offline stack (demo and system profiles: api, postgres, redis, their exporters, node-exporter, "
        f"process-exporter, Prometheus, a Locust master and 2 workers; Grafana has no offline image) as "
        f"compose project `{PROJECT}`, images already built.",
        "",
        "| step | seconds |",
        "| --- | ---: |",
        f"| `lab up`, fresh volumes (Postgres initialised, 10,000 items seeded), to every service healthy "
        f"| {f['up_fresh_s']:.1f} |",
    ]
    if "up_warm_s" in f:
        lines.append(f"| `lab up`, kept volumes, to every service healthy | {f['up_warm_s']:.1f} |")
    lines.append(f"| `lab down` (containers and network removed, volumes kept) | {f['down_s']:.1f} |")
    if "down_volumes_s" in f:
        lines.append(f"| `lab down --volumes` | {f['down_volumes_s']:.1f} |")
    lines += [
        "",
        f"Idle memory, {SETTLE_SECONDS} s after `lab up` returned (`docker stats --no-stream`, MiB):",
        "",
        "| container | MiB |",
        "| --- | ---: |",
    ]
    for name, value in sorted(memory.items(), key=lambda item: -item[1]):
        lines.append(f"| {name} | {mib(value)} |")
    lines += [f"| **whole stack** | **{mib(sum(memory.values()))}** |", ""]
    system = f["system_exporters"]
    lines += [
        f"What the system exporters cost on the idle stack, over {system['seconds']:.0f} s after that "
        f"({system['host_processes']} processes on the host, which process-exporter reads at every scrape): "
        "CPU from the engine's cumulative CPU time of each container (its healthchecks included), resident "
        "memory of its process (`VmRSS`), and its Prometheus job's series and mean scrape duration:",
        "",
        "| exporter (job) | CPU, cores | resident memory, MiB | series | scrape, ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, cost in system["exporters"].items():
        lines.append(
            f"| {name} (`{cost['job']}`) | {cost['cores']:.4f} | {cost['rss_bytes'] / 1024**2:,.1f} "
            f"| {cost['series']:,} | {cost['scrape_s'] * 1000:,.1f} |"
        )
    lines.append("")
    series = f["series_by_job"]
    lines += [
        f"Prometheus during the default scenario (`lab run baseline --duration {f['hold']}`: 20 users, a 30 s "
        f"ramp, then the hold; {f['run_s']:.0f} s in all), with every job scraped every 5 s:",
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| head series at the end of the run (`prometheus_tsdb_head_series`) | {after['head_series']:,.0f} |",
        f"| of which per job | {', '.join(f'{job} {n:,}' for job, n in sorted(series.items()))} |",
        f"| samples appended per second (last minute) | {samples_per_s:,.0f} |",
        f"| samples per hour | {samples_per_s * 3600 / 1e6:,.1f} million |",
        f"| WAL growth over the run, per hour | {wal_per_hour / 1024**2:,.1f} MiB |",
        f"| all of /prometheus, growth per hour | {total_per_hour / 1024**2:,.1f} MiB |",
        f"| WAL bytes per sample (measured) | {measured_bytes_per_sample:.2f} |",
        f"| compacted blocks per hour at 2 bytes a sample | {samples_per_s * 3600 * 2 / 1024**2:,.1f} MiB |",
        "",
        f"How it was extrapolated: the disk growth and the samples appended were measured between the end "
        f"of the idle period and the end of the run ({seconds:.0f} s), then scaled to an hour (×3600 / "
        f"{seconds:.0f}). Series stay as they are while one run lasts (every series is sampled every 5 s); "
        "each new run adds its own Locust series (they carry `run_id`), the other jobs' series stay. "
        "Prometheus keeps recent samples in its write-ahead log and cuts 2-hour blocks from it, which "
        "compress to 1-2 bytes a sample (Prometheus's storage documentation). To size retention: samples "
        "per second × retention in seconds × 2 bytes, plus about three hours of WAL.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", default="3m", help="the baseline scenario's hold (default 3m)")
    parser.add_argument(
        "--idle", type=float, default=180, help="seconds the system exporters' idle cost is averaged over"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a 30 s hold and idle window, no second `lab up`"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here, as JSON")
    args = parser.parse_args()
    if args.quick:
        args.hold, args.idle = "30s", 30
    with tempfile.TemporaryDirectory(prefix="lab-bench-stack-") as tmp:
        stack = Stack(Path(tmp))
        try:
            figures = measure(stack, args.hold, args.idle, args.quick)
        finally:
            print("stack: lab down --volumes", file=sys.stderr)
            down_volumes_s = stack.lab("down", "--volumes", ok=(0, 1))
            if stack.containers():  # created by a `lab up` interrupted mid-way, after the first down
                stack.lab("down", "--volumes", ok=(0, 1))
        if not args.quick:  # in quick mode the stack was already down: only the volumes went
            figures["down_volumes_s"] = down_volumes_s
    print(markdown(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # `lab down --volumes` has run on the way out
        sys.exit(130)
