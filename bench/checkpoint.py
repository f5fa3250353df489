"""What a running run's checkpoints leave in the master's memory; prints a Markdown section.

Every --lab-checkpoint-seconds (60 by default) the master freezes a running run's figures and writes
Locust's CSVs and HTML report from them (lab.plugin.checkpoint, lab.plugin.runs.write_results). Here,
in a fresh process per variant, stats shaped like the soak's (bench/soak.py: 20 request names, 2 of them
failing, the trimmed window of 600 s of per-second counts and chart rows) take one simulated minute of
requests between checkpoints, and the process's RSS is read after each of --checkpoints writes (90: an
hour and a half of a run at the default interval). Variants:

- `lab`: as the lab writes a checkpoint (write_results, which ends with a garbage collection);
- `Locust's HTML report alone`: get_html_report on the same stats, nothing else;
- `Locust's HTML report, then gc.collect()`: the same, followed by a full collection.

Locust builds a new Jinja environment for every report, and it and its compiled 1 MB template hold each
other: garbage that only the cycle collector's rare full passes free.

No load and no sockets: the same work at every checkpoint, so any growth is what the allocator keeps.

Usage: python bench/checkpoint.py [--checkpoints 90] [--json FILE]
"""

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NAMES, FAILING = 20, 2
REQUESTS_PER_NAME_SECOND = 10
WINDOW_SECONDS = 600  # lab.plugin.trim's default
CHART_ROW_SECONDS = 5  # Locust's HISTORY_STATS_INTERVAL_SEC
WARMUP = 10  # checkpoints left out of the slope
VARIANTS = ("lab", "Locust's HTML report alone", "Locust's HTML report, then gc.collect()")


def measure(variant: str, checkpoints: int) -> list[float]:
    """RSS in MiB after each checkpoint of one variant, in this process."""
    import psutil
    from locust.html import get_html_report
    from locust.stats import update_stats_history

    from bench.exporter import local_environment
    from lab.plugin import runs
    from lab.plugin.trim import trim_stats

    env = local_environment()
    run = runs.start_run(env)
    rng = random.Random(1)
    stats = env.stats
    clock = 1_800_000_000  # simulated seconds: Locust's per-second keys and the chart rows

    def one_second() -> None:
        nonlocal clock
        clock += 1
        for i in range(NAMES):
            name = f"/fail/{i}" if i < FAILING else f"/ok/{i}"
            for _ in range(REQUESTS_PER_NAME_SECOND):
                stats.log_request("GET", name, rng.choice((1, 2, 3, 5, 8, 12, 20, 35, 60, 110)), 128)
                if i < FAILING:
                    stats.log_error("GET", name, "HTTPError('500 Server Error')")
            for entry in (stats.entries[(name, "GET")], stats.total):
                entry.num_reqs_per_sec[clock] += REQUESTS_PER_NAME_SECOND
                if i < FAILING:
                    entry.num_fail_per_sec[clock] += REQUESTS_PER_NAME_SECOND
        if clock % CHART_ROW_SECONDS == 0:
            update_stats_history(env.runner)
        trim_stats(stats, WINDOW_SECONDS, clock)

    for _ in range(WINDOW_SECONDS):  # the window filled, as in a soak past its first ten minutes
        one_second()
    process = psutil.Process()
    rss = []
    for _ in range(checkpoints):
        for _ in range(60):
            one_second()
        if variant == "lab":
            runs.write_results(env, run, runs.Figures.freeze(env.runner, clock))
        else:
            get_html_report(env, show_download_link=False)
            if variant.endswith("gc.collect()"):
                gc.collect()
        rss.append(process.memory_info().rss / 2**20)
    return rss


def slope_per_checkpoint(values: list[float]) -> float:
    n = len(values)
    mx, my = (n - 1) / 2, sum(values) / n
    return sum((x - mx) * (y - my) for x, y in enumerate(values)) / sum((x - mx) ** 2 for x in range(n))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoints", type=int, default=90, help="checkpoints a variant writes (default 90)"
    )
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one variant, in a child
    parser.add_argument("--json", type=Path, help="also write the figures here, as JSON (for bench/run.py)")
    args = parser.parse_args()
    if args.checkpoints <= WARMUP + 1:
        parser.error(f"--checkpoints must be more than {WARMUP + 1}")
    if args.variant:
        print(json.dumps(measure(args.variant, args.checkpoints)))
        return 0
    results = {}
    with tempfile.TemporaryDirectory(prefix="lab-bench-checkpoint-") as tmp:
        for variant in VARIANTS:  # one after the other, each in a fresh process: its own heap
            child = subprocess.run(
                [sys.executable, __file__, "--variant", variant, "--checkpoints", str(args.checkpoints)],
                capture_output=True, text=True, check=True, env={**os.environ, "LAB_RESULTS_DIR": tmp},
            )  # fmt: skip
            results[variant] = json.loads(child.stdout)
    print(f"## Checkpoints and the master's memory ({args.checkpoints} checkpoints)\n")
    print(
        f"`python bench/checkpoint.py --checkpoints {args.checkpoints}`: stats shaped like the soak's ({NAMES} "
        f"request names, {FAILING} failing, {WINDOW_SECONDS} s of per-second counts and chart rows), one "
        "simulated minute of requests between checkpoints, each variant in a fresh process; RSS after each "
        f"checkpoint, the slope fitted after the first {WARMUP} and given per hour at the default 60 s "
        "interval.\n"
    )
    print(
        "| variant | RSS after 1st (MiB) | RSS after last (MiB) | highest (MiB) | slope (MiB/hour at 60 s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    figures = []
    for variant, rss in results.items():
        slope = slope_per_checkpoint(rss[WARMUP:]) * 60
        figures.append({"variant": variant, "rss_mib": rss, "slope_mib_per_hour": slope})
        print(f"| {variant} | {rss[0]:.1f} | {rss[-1]:.1f} | {max(rss):.1f} | {slope:+.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"checkpoints": args.checkpoints, "variants": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
