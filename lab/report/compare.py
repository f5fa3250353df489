"""`lab compare`: did a run get worse than another run or than the saved baseline?

`lab compare RUN_A RUN_B` compares B against A; `lab compare --save-baseline RUN` stores RUN's
figures in <results>/baseline.json and `lab compare RUN` then compares RUN against them. Exit
status 1 on a regression, so CI can gate on it.
"""

import json
import sys
from pathlib import Path

from lab import report
from lab.core import results, slo
from lab.core.errors import LabError
from lab.core.files import check_writable, write_atomic
from lab.report import analysis

BASELINE_FILE = "baseline.json"
# Which clock a run's latencies are on: Locust's response time, or an open-model (`rate`) run's from each
# arrival's due time, which adds the wait for a free user.
LOCUST_CLOCK, INTENDED_CLOCK = "response time", "intended start"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare two runs (or a run against the saved baseline); exit 1 on a regression",
        description="Per-endpoint and overall changes in requests/s, p95, p99 and error ratio, "
        "flagged where they exceed the thresholds. `lab compare RUN_A RUN_B` compares B against A; "
        "`lab compare RUN` compares RUN against the baseline saved by `lab compare --save-baseline RUN`.",
    )
    parser.add_argument(
        "runs", nargs="+", metavar="RUN_ID", help="RUN_A RUN_B, or one RUN against the baseline"
    )
    parser.add_argument(
        "--save-baseline",
        action="store_true",
        help=f"save the one RUN's figures as <results>/{BASELINE_FILE}",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.2,
        help="relative change flagged as a regression: requests/s down or p95/p99 up by more (default 0.2)",
    )
    parser.add_argument(
        "--error-threshold",
        type=float,
        default=0.01,
        help="absolute rise in error ratio (and a rate run's dropped ratio) flagged as a regression "
        "(default 0.01, one percentage point)",
    )
    parser.add_argument(
        "--min-latency-ms",
        type=float,
        default=10.0,
        help="p95/p99 rises smaller than this never count, whatever their ratio (default 10)",
    )
    parser.add_argument(
        "--json", type=Path, help="where to write the comparison (default results/<RUN_B>/compare.json)"
    )
    report.add_source_arguments(parser, prometheus=False)
    parser.set_defaults(func=main)


def main(args) -> int:
    if len(args.runs) > 2 or (args.save_baseline and len(args.runs) != 1):
        raise LabError("give RUN_A RUN_B, or one RUN (with --save-baseline to store it as the baseline)")
    report.resolve_sources(args)
    baseline_path = args.results / BASELINE_FILE
    # Where the result goes must take it before Prometheus is asked (an unknown run is named later).
    out_folder = (
        args.results
        if args.save_baseline
        else args.json.parent
        if args.json
        else args.results / args.runs[-1]
    )
    if args.json or out_folder.is_dir():
        check_writable(out_folder, fix="pass --json FILE" if args.json else "pass --results DIR")
    if args.save_baseline:
        figures = figures_of(args, args.runs[0])
        write_atomic(baseline_path, json.dumps(figures, indent=2) + "\n", fix="pass --results DIR")
        print(f"saved {args.runs[0]} as the baseline in {baseline_path}")
        return 0
    if len(args.runs) == 2:
        before, after = figures_of(args, args.runs[0]), figures_of(args, args.runs[1])
    else:
        if not baseline_path.is_file():
            raise LabError(f"no baseline at {baseline_path}: save one with `lab compare --save-baseline RUN`")
        try:
            before = json.loads(baseline_path.read_text())
        except ValueError as exc:
            raise LabError(f"{baseline_path} is not valid JSON ({exc}); save the baseline again") from None
        after = figures_of(args, args.runs[0])
    comparison = compare(before, after, args.threshold, args.error_threshold, args.min_latency_ms / 1000.0)
    print(
        f"{after['run_id']} compared with {before['run_id']}" + (" (baseline)" if len(args.runs) == 1 else "")
    )
    clocks = comparison["clock"]
    if clocks["before"] != clocks["after"]:
        print(
            f"warning: the latencies are on different clocks ({before['run_id']}: {clocks['before']}, "
            f"{after['run_id']}: {clocks['after']}): compare a rate run with a rate run",
            file=sys.stderr,
        )
    print(format_table(comparison["rows"]))
    out = args.json or args.results / after["run_id"] / "compare.json"
    write_atomic(out, json.dumps(comparison, indent=2) + "\n", fix="pass --json FILE")
    regressions = [r for r in comparison["rows"] if r["regression"]]
    if regressions:
        names = ", ".join(f"{r['endpoint']} {r['metric']}" for r in regressions)
        print(f"REGRESSION: {len(regressions)} figure(s) worse than the thresholds allow: {names}")
        return 1
    print("no regression")
    return 0


def compare(before: dict, after: dict, threshold: float, error_threshold: float, min_latency: float) -> dict:
    """The comparison written as JSON: both run ids, the thresholds, and one row per endpoint and metric."""
    rows = analysis.compare_figures(
        before["endpoints"], after["endpoints"], threshold, error_threshold, min_latency
    )
    return {
        "before": before["run_id"],
        "after": after["run_id"],
        # A baseline saved before runs said their clock was a closed run's.
        "clock": {"before": before.get("clock", LOCUST_CLOCK), "after": after.get("clock", LOCUST_CLOCK)},
        # The whole-run request counts the figures are based on, per endpoint (None: not in that run).
        "requests": {
            endpoint: {
                "before": before["endpoints"].get(endpoint, {}).get("requests"),
                "after": after["endpoints"].get(endpoint, {}).get("requests"),
            }
            for endpoint in sorted(set(before["endpoints"]) | set(after["endpoints"]))
        },
        "thresholds": {
            "relative": threshold,
            "error_ratio_absolute": error_threshold,
            "min_latency_seconds": min_latency,
        },
        "regressions": sum(1 for r in rows if r["regression"]),
        "rows": rows,
    }


def figures_of(args, run_id: str) -> dict:
    """{"run_id", "endpoints": {"overall": {...}, "GET /items": {...}}} from the run's locust_stats.csv."""
    run = report.load_run(args.results, run_id)
    if run.workers_lost:
        print(
            f"warning: run {run.run_id} lost {len(run.workers_lost)} worker(s): it sent less load than asked, "
            "so its figures are not comparable",
            file=sys.stderr,
        )
    endpoints = results.client_figures(run.folder, run.end - run.started_at)
    arrivals = results.verdict_files(run.folder).get("arrivals")
    if arrivals is None:
        return {"run_id": run.run_id, "clock": LOCUST_CLOCK, "endpoints": endpoints}
    # An open-model run's latency as its verdicts judge it: from each arrival's due time.
    return {
        "run_id": run.run_id,
        "clock": INTENDED_CLOCK,
        "endpoints": results.on_intended_clock(endpoints, arrivals),
    }


UNITS = {
    "requests_per_second": ("req/s", 1.0, "{:.2f}"),
    "p95_seconds": ("p95", 1000.0, "{:.1f} ms"),
    "p99_seconds": ("p99", 1000.0, "{:.1f} ms"),
    "error_ratio": ("errors", 100.0, "{:.2f}%"),
    "dropped_ratio": ("dropped", 100.0, "{:.2f}%"),
}


def format_table(rows: list[dict]) -> str:
    """One line per endpoint and metric: before, after, change, and a flag on regressions."""
    lines = [("endpoint", "metric", "before", "after", "change", "")]
    for row in rows:
        metric = row["metric"]
        if row["change"] is None:
            change = "only in one run"
        elif metric in slo.RATIOS:  # judged in absolute terms: percentage points
            change = f"{row['change'] * 100:+.2f} pts"
        elif row["relative_change"] is not None:
            change = f"{row['relative_change'] * 100:+.1f}%"
        else:  # from 0
            change = "+" + _value(metric, row["change"])
        flag = "REGRESSION" if row["regression"] else ""
        lines.append(
            (
                row["endpoint"],
                UNITS[metric][0],
                _value(metric, row["before"]),
                _value(metric, row["after"]),
                change,
                flag,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(6)]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )


def _value(metric: str, value: float | None) -> str:
    _, scale, fmt = UNITS[metric]
    return "-" if value is None else fmt.format(value * scale)
