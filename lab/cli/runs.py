"""`lab runs`: the runs in the results folder, newest first, with their figures from the run's own files."""

import time

from lab.core import limits, results
from lab.core.errors import LabError
from lab.core.runrecord import FILE, RunRecord
from lab.report import add_source_arguments, resolve_sources

COLUMNS = ("run id", "scenario", "start (UTC)", "duration", "requests", "p95", "verdict", "capacity")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "runs",
        help="list the runs in the results folder, newest first",
        description="One line per run: id, scenario, start, duration, requests, p95, SLO verdict and capacity.",
    )
    add_source_arguments(parser, prometheus=False)
    parser.set_defaults(func=main)


def main(args) -> int:
    resolve_sources(args)
    records = [RunRecord.read(path.parent) for path in args.results.glob(f"*/{FILE}")]
    if not records:
        print(f"no runs in {args.results}/: start one with `lab run SCENARIO`")
        return 0
    rows = [row(record) for record in sorted(records, key=lambda r: r.started_at, reverse=True)]
    print(table([COLUMNS, *rows]))
    return 0


def row(run: RunRecord) -> tuple[str, ...]:
    extras = results.verdict_files(run.folder)
    requests = p95 = "-"
    if run.ended_at is not None:
        try:
            figures = results.client_figures(run.folder, run.end - run.started_at)
        except LabError:
            pass  # ended without its CSV (the master died while writing): shown without figures
        else:
            if "arrivals" in extras:  # a rate run's p95 as its verdict judged it: from the intended start
                figures = results.on_intended_clock(figures, extras["arrivals"])
            overall = figures["overall"]
            requests = f"{overall['requests']:,}"
            p95 = "-" if overall["p95_seconds"] is None else f"{overall['p95_seconds'] * 1000:g} ms"
    slo = extras.get("slo")
    if run.ended_at is None:
        verdict = "running"
    elif slo is None:
        verdict = "-"
    elif slo.get("aborted"):
        verdict = "ABORTED"
    else:
        verdict = "PASS" if slo.get("passed") else "FAIL"
    if run.invalidated:
        verdict += " (invalidated)"
    capacity = extras.get("capacity")
    if capacity is None:
        found = "-"
    elif "rate" in capacity:  # a rate search: the offered arrivals/s it carried
        found = (
            "none"
            if capacity["rate"] is None
            else f"{capacity['rate']:g}/s offered @ {capacity['requests_per_second']:.1f}/s"
        )
    elif capacity.get("users") is None:
        found = "none"
    else:
        found = f"{capacity['users']} users @ {capacity['requests_per_second']:.1f}/s"
        if limits.at_least(capacity):  # the search stopped at its maximum: a lower bound
            found = "at least " + found
    duration = "running" if run.ended_at is None else _duration(run.ended_at - run.started_at)
    start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(run.started_at))
    return (run.run_id, run.scenario, start, duration, requests, p95, verdict, found)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


def table(lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
