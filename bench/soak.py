"""A compressed soak: the Locust master's resident memory over time, with the lab plugin and without.

Two real Locust clusters (a master and one worker each) run side by side for the same --minutes
against one local HTTP server on loopback, each at --rps requests/s over --names request names (two
of them failing). One master loads the lab plugin (exporter, run lifecycle, trimming) and is scraped
every --sample-seconds like Prometheus would; the other is plain Locust. Both masters' RSS is sampled
every --sample-seconds; after a warm-up, a least-squares line gives each one's slope in MiB per hour.

Locust's master grows with time and request names, not with the request rate (one key a second a
name, one chart row every 5 s): a moderate rate over many names compresses hours of growth into
minutes. Everything it starts it stops. Prints a Markdown section.

Usage: python bench/soak.py --minutes 120 --warmup-minutes 40   (the long run: `make bench BENCH_ARGS=--long-soak`)
       python bench/soak.py --minutes 30
       python bench/soak.py --minutes 7 --history-seconds 120   (shorter: a smaller window fills sooner)
       python bench/soak.py --minutes 2      (a smoke check: too short for the window to fill)
"""

import argparse
import json
import math
import os
import platform
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.plugin.trim import DEFAULT_HISTORY_SECONDS  # noqa: E402
from tests.integration.exporter_target import serve  # noqa: E402
from tests.support.locust import PLUGIN, LocustProcesses, locust_env  # noqa: E402

LOCUSTFILE = REPO / "bench" / "soak_locustfile.py"
USER_RPS = 10  # each user's constant throughput; users = rps / USER_RPS
END_MARGIN_SECONDS = 15


class Cluster(LocustProcesses):
    """A Locust master and one worker in subprocesses, headless, stopping by themselves after `seconds`."""

    def __init__(self, label: str, plugin: bool, host: str, args, workdir: Path):
        self.label = label
        self.samples: list[tuple[float, int]] = []  # (monotonic seconds, RSS bytes)
        users = max(1, round(args.rps / USER_RPS))
        env = locust_env(
            workdir / f"results-{label}", SOAK_NAMES=str(args.names), SOAK_USER_RPS=str(args.rps / users)
        )
        quiet = ["--loglevel", "WARNING"]
        master = [
            *quiet, "--only-summary", "--host", host,
            "-u", str(users), "-r", str(users), "-t", f"{args.minutes * 60:.0f}s",
        ]  # fmt: skip
        if plugin:
            master += [
                "--scenarios-file", str(REPO / "locust" / "scenarios.yaml"),
                "--slo-file", str(REPO / "locust" / "slo.yaml"),
                "--lab-history-seconds", str(args.history_seconds),
            ]  # fmt: skip
        folder = workdir / label  # each cluster's logs in its own folder
        folder.mkdir()
        super().__init__(
            folder,
            [LOCUSTFILE, PLUGIN] if plugin else [LOCUSTFILE],
            workers=1,
            headless=True,
            exporter=plugin,
            args=master,
            worker_args=quiet,
            env=env,
        )
        self.start()

    def sample(self, now: float) -> None:
        import psutil

        if self.master.poll() is not None:
            return
        try:
            self.samples.append((now, psutil.Process(self.master.pid).memory_info().rss))
        except psutil.NoSuchProcess:
            return
        if self.exporter_port:  # what Prometheus does every scrape interval
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.exporter_port}/metrics", timeout=5).read()
            except OSError:
                pass  # not listening yet during start-up


def slope_per_hour(samples: list[tuple[float, int]]) -> tuple[float, float]:
    """Least-squares slope of RSS in MiB per hour, and its standard error."""
    n = len(samples)
    xs = [t / 3600 for t, _ in samples]
    ys = [rss / 2**20 for _, rss in samples]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    residual = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys, strict=True))
    return slope, math.sqrt(residual / (n - 2) / sxx)


def run(args) -> tuple[list[Cluster], float, int]:
    server = serve()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory(prefix="lab-soak-") as tmp:
        clusters = [
            Cluster("with-plugin", True, host, args, Path(tmp)),
            Cluster("without-plugin", False, host, args, Path(tmp)),
        ]
        started = time.monotonic()
        # The masters stop their run after --minutes and quit; a little grace for start-up and quitting.
        deadline = started + args.minutes * 60 + 30
        try:
            # Until the first master quits: at the end of its run, or early on an error (reported below).
            while time.monotonic() < deadline and all(c.master.poll() is None for c in clusters):
                now = time.monotonic() - started
                for cluster in clusters:
                    cluster.sample(now)
                time.sleep(args.sample_seconds)
        finally:
            for cluster in clusters:
                cluster.stop()
            elapsed = time.monotonic() - started
            server.shutdown()
        for cluster in clusters:
            if len(cluster.samples) < 10:
                log = cluster.logs(2000)
                raise SystemExit(f"{cluster.label}: too few samples ({len(cluster.samples)}); log:\n{log}")
    return clusters, elapsed, server.served


def fits(args, clusters: list[Cluster]) -> list[dict]:
    """Each master's fitted samples and slope: after the warm-up, before the run's end."""
    warmup = args.warmup_minutes * 60
    # The run ends at --minutes (its timer starts once the worker is in): then the master writes its
    # results (CSV, HTML report), a one-off allocation that is not steady state.
    end = args.minutes * 60 - END_MARGIN_SECONDS
    found = []
    for cluster in clusters:
        fitted = [(t, rss) for t, rss in cluster.samples if warmup <= t <= end]
        slope, se = slope_per_hour(fitted)
        found.append({
            "label": cluster.label.replace("-", " "),
            "samples_fitted": len(fitted),
            "rss_after_warmup_mib": fitted[0][1] / 2**20,
            "rss_at_end_mib": fitted[-1][1] / 2**20,
            "slope_mib_per_hour": slope,
            "standard_error": se,
        })  # fmt: skip
    return found


def sample_table(clusters: list[Cluster], rows: int = 12) -> list[str]:
    """The raw samples, thinned to about `rows` moments: each master's RSS at the sample nearest each."""
    last = min(c.samples[-1][0] for c in clusters)
    every = max(60, round(last / rows / 60) * 60)  # whole minutes
    header = " | ".join(f"{c.label.replace('-', ' ')} (MiB)" for c in clusters)
    lines = [f"| minute | {header} |", "| ---: |" + " ---: |" * len(clusters)]
    for moment in range(0, int(last) + 1, every):
        nearest = [min(c.samples, key=lambda s, m=moment: abs(s[0] - m))[1] / 2**20 for c in clusters]
        lines.append(f"| {moment / 60:.0f} | " + " | ".join(f"{rss:.1f}" for rss in nearest) + " |")
    return lines


def section(args, clusters: list[Cluster], elapsed: float, served: int) -> str:
    warmup = args.warmup_minutes * 60
    options = f"--minutes {args.minutes:g} --warmup-minutes {args.warmup_minutes:g}"
    if args.history_seconds != DEFAULT_HISTORY_SECONDS:
        options += f" --history-seconds {args.history_seconds}"
    lines = [
        f"## Soak: the Locust master's memory over {args.minutes:g} minutes",
        "",
        f"`python bench/soak.py {options}`: two clusters (master + 1 worker) side by side "
        f"for {args.minutes:g} minutes, each at {args.rps} requests/s over {args.names} request names "
        f"(2 failing), against one loopback HTTP server; {served / elapsed:.0f} requests/s served in all. "
        f"Master RSS sampled every {args.sample_seconds:g} s (the plugin's exporter scraped as often); "
        f"the first {warmup / 60:.1f} minutes (start-up, and the plugin's {args.history_seconds} s window "
        f"filling up) and the last {END_MARGIN_SECONDS} s (the end of the run) are left out of the fit. "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs.",
        "",
        "| master | samples fitted | RSS after warm-up (MiB) | RSS at end (MiB) | slope (MiB/hour) | ± 2 s.e. |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fit in fits(args, clusters):
        lines.append(
            f"| {fit['label']} | {fit['samples_fitted']} | {fit['rss_after_warmup_mib']:.1f} "
            f"| {fit['rss_at_end_mib']:.1f} | {fit['slope_mib_per_hour']:+.2f} | {2 * fit['standard_error']:.2f} |"
        )
    if warmup < args.history_seconds + 60:
        lines += [
            "",
            f"**The fit starts before the plugin's {args.history_seconds} s window has filled**, so the plugin's "
            "slope still includes growth that trimming bounds later: run longer, or pass a shorter "
            "--history-seconds.",
        ]
    lines += [
        "",
        "The standard error assumes independent samples; RSS moves in allocator-sized steps, so read a "
        "slope within a few times its error bar as flat.",
        "",
        f"The samples ({len(clusters[0].samples)} a master, every {args.sample_seconds:g} s), thinned to "
        "whole minutes:",
        "",
        *sample_table(clusters),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=30, help="soak length (default 30; 2 for a quick check)"
    )
    parser.add_argument("--rps", type=int, default=200, help="requests/s of each cluster (default 200)")
    parser.add_argument("--names", type=int, default=20, help="distinct request names (default 20)")
    parser.add_argument("--sample-seconds", type=float, default=5, help="RSS sampling interval (default 5)")
    parser.add_argument(
        "--history-seconds",
        type=int,
        default=DEFAULT_HISTORY_SECONDS,
        help=f"the plugin master's --lab-history-seconds (default {DEFAULT_HISTORY_SECONDS}, the lab's own)",
    )
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        help="minutes left out of the fit (default: the history window plus a minute, at most half the run)",
    )
    parser.add_argument("--samples", type=Path, help="also write every RSS sample to this CSV file")
    parser.add_argument("--json", type=Path, help="also write the fit here, as JSON (for bench/run.py)")
    args = parser.parse_args()
    if args.minutes < 1:
        parser.error("--minutes must be at least 1")
    if args.warmup_minutes is None:
        args.warmup_minutes = min(args.history_seconds / 60 + 1, args.minutes / 2)
    # A plain kill must still stop the clusters: SystemExit runs run()'s `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    clusters, elapsed, served = run(args)
    print(section(args, clusters, elapsed, served))
    if args.json:
        args.json.write_text(json.dumps({"minutes": args.minutes, "masters": fits(args, clusters)}, indent=2))
    if args.samples:
        with args.samples.open("w") as f:
            f.write("master,seconds,rss_bytes\n")
            for cluster in clusters:
                f.writelines(f"{cluster.label},{t:.1f},{rss}\n" for t, rss in cluster.samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
