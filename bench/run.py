"""`make bench`: every benchmark of bench/ in turn, each bounded, into docs/benchmarks.md.

Each module runs in its own process (its own session, so a timeout or Ctrl-C can stop everything it
started): it prints a Markdown section on stdout, its progress on stderr. This script adds the machine
description, the exact commands and a summary, and writes the document. Sections that fail or time out
say so in the document, and the exit status is 1.

    python bench/run.py                  # everything (under 30 minutes), writes docs/benchmarks.md
    python bench/run.py --only api       # one section (repeatable), printed unless --output is given
    python bench/run.py --quick          # a fast smoke of every section, printed unless --output is given
    python bench/run.py --many-workers   # also a master with 25, 50 and 100 workers (about 10 minutes more)
    python bench/run.py --long-soak      # also the 2-hour soak of the master's memory
    python bench/run.py --only stack --update   # re-measure one section in docs/benchmarks.md, keep the rest

docs/benchmarks.md keeps each section between markers with its command, date and figures, so that a run
that leaves out a section (the long options, or --update) carries that section over from the last run
that measured it, saying when that was, instead of dropping it.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
# bench/soak.py's own compressed setting: a 120 s history window fills in the first 3 minutes, so the
# last 4 are fitted with the lab's trimming at work (the lab's default window is 600 s).
SOAK_MINUTES = 7
# The long soak (--long-soak): two hours at the lab's own 600 s history window; the fit leaves out the
# first third, so it covers the last two thirds of the run. Its raw samples go next to the document.
LONG_SOAK_MINUTES = 120
SOAK_SAMPLES = REPO / "docs" / "soak-samples.csv"
BUDGET_SECONDS = 29 * 60  # the whole run; each section's bound is cut to what is left
MIN_SECONDS = 60
STACK_PROJECT = "loadlab-bench"  # bench/stack.py's compose project
GRACE_SECONDS = 90  # after SIGINT, for a section to stop what it started (e.g. `lab down --volumes`)


@dataclass(frozen=True)
class Section:
    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    timeout: float  # seconds, for the full run; quick runs get the same bound
    json: bool = False  # the module writes its figures with --json, for the summary
    optional: bool = False  # left out of the default run (its own option, or --only)

    def command(self, quick: bool, json_path: Path | None) -> list[str]:
        command = [sys.executable, self.script, *(self.quick if quick else self.full)]
        if self.json and json_path:
            command += ["--json", str(json_path)]
        return command


SECTIONS = (
    Section("loadgen", "bench/loadgen.py", ("--rounds", "4", "--seconds", "8"), ("--quick",), 420, json=True),
    Section("exporter", "bench/exporter.py", ("--quick",), ("--quick",), 150, json=True),
    Section("api", "bench/api.py", ("--duration", "10"), ("--duration", "3"), 210),
    Section("checkpoint", "bench/checkpoint.py", (), ("--checkpoints", "15"), 300, json=True),
    Section(
        "soak",
        "bench/soak.py",
        ("--minutes", str(SOAK_MINUTES), "--history-seconds", "120"),
        ("--minutes", "2"),
        (SOAK_MINUTES + 2) * 60,
    ),
    Section("stack", "bench/stack.py", ("--hold", "2m"), ("--quick",), 720, json=True),
    Section(
        "workers",
        "bench/workers.py",
        (),
        ("--workers", "2,4", "--seconds", "6"),
        1500,
        json=True,
        optional=True,
    ),
    Section(
        "long-soak",
        "bench/soak.py",
        (
            "--minutes",
            str(LONG_SOAK_MINUTES),
            "--warmup-minutes",
            str(LONG_SOAK_MINUTES // 3),
            "--samples",
            str(SOAK_SAMPLES.relative_to(REPO)),
        ),
        ("--minutes", "2"),
        (LONG_SOAK_MINUTES + 5) * 60,
        json=True,
        optional=True,
    ),
)
BY_NAME = {s.name: s for s in SECTIONS}
MARK = re.compile(r"<!-- bench-section (\{.*?\}) -->\n(.*?)\n<!-- /bench-section -->", re.DOTALL)


@dataclass
class Outcome:
    section: Section
    command: list[str]
    markdown: str
    seconds: float
    status: str  # "ok", "failed (exit N)", "timed out", "missing"
    load_before: float
    load_after: float
    figures: dict | None = None
    measured: str = ""  # UTC date and time the section ran
    carried: bool = False  # taken from the document of an earlier run

    def shown_command(self) -> str:
        shown = (
            self.command[1 : self.command.index("--json")] if "--json" in self.command else self.command[1:]
        )
        return shlex.join(["python", *shown])

    def block(self) -> str:
        """The section in the document, between markers that let a later run carry it over."""
        meta = {
            "name": self.section.name, "command": self.command, "status": self.status, "seconds": self.seconds,
            "load": [self.load_before, self.load_after], "measured": self.measured, "figures": self.figures,
        }  # fmt: skip
        return f"<!-- bench-section {json.dumps(meta)} -->\n{self.markdown.strip()}\n<!-- /bench-section -->"


def earlier_outcomes(document: Path) -> dict[str, Outcome]:
    """The sections an earlier run wrote into the document, by name."""
    if not document.is_file():
        return {}
    found = {}
    for match in MARK.finditer(document.read_text()):
        meta = json.loads(match.group(1))
        section = BY_NAME.get(meta["name"])
        if section is None:  # a section this checkout no longer has
            continue
        found[section.name] = Outcome(
            section, meta["command"], match.group(2), meta["seconds"], meta["status"], *meta["load"],
            figures=meta["figures"], measured=meta["measured"], carried=True,
        )  # fmt: skip
    return found


def run_section(section: Section, quick: bool, workdir: Path, budget: float) -> Outcome:
    json_path = workdir / f"{section.name}.json"
    command = section.command(quick, json_path)
    load_before = os.getloadavg()[0]
    measured = now()
    if not (REPO / section.script).is_file():
        text = (
            f"## {section.name}\n\nNot measured in this run: this section is produced by `{section.script}`, "
            "which this checkout does not have.\n"
        )
        return Outcome(section, command, text, 0.0, "missing", load_before, load_before, measured=measured)
    timeout = min(section.timeout, budget)
    if timeout < MIN_SECONDS:
        text = f"## {section.name}\n\nNot measured in this run: the run's time budget was spent.\n"
        return Outcome(
            section, command, text, 0.0, "skipped (time budget)", load_before, load_before, measured=measured
        )
    print(f"\n=== {section.name}: {shlex.join(command)}", file=sys.stderr, flush=True)
    out_path = workdir / f"{section.name}.md"
    start = time.monotonic()
    errors: deque[str] = deque(maxlen=15)  # the tail of its stderr, for the document if it fails
    with out_path.open("w") as out:
        process = subprocess.Popen(
            command, cwd=REPO, stdout=out, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        echo = threading.Thread(target=relay, args=(process.stderr, errors), daemon=True)
        echo.start()
        try:
            code = process.wait(timeout)
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            stop(process)
            status = f"timed out after {timeout:.0f} s"
        except BaseException:  # Ctrl-C or any failure here: the section stops what it started
            stop(process)
            raise
    seconds = time.monotonic() - start
    echo.join(10)
    text = out_path.read_text()
    if status != "ok":
        tail = "".join(errors).rstrip()
        text = (
            f"## {section.name}\n\n**Not complete: {status}.** The end of its error output:\n\n"
            f"```\n{tail}\n```\n\n{text}"
        )
    figures = json.loads(json_path.read_text()) if section.json and json_path.is_file() else None
    print(f"=== {section.name}: {status} in {seconds:.0f} s", file=sys.stderr, flush=True)
    return Outcome(
        section, command, text, seconds, status, load_before, os.getloadavg()[0], figures, measured
    )


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")


def relay(stream, tail: deque) -> None:
    """Pass a section's progress on to our stderr as it comes, keeping its last lines."""
    for line in stream:
        sys.stderr.write(line)
        tail.append(line)


def stop(process: subprocess.Popen) -> None:
    """SIGINT first, so the section's finally blocks stop its servers and stack; then kill its session."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # anything of its session still running
    except ProcessLookupError:
        pass
    process.wait()


def remove_leftover_stack(workdir: Path) -> None:
    """Last resort, when the stack section could not clean up after itself: its project, by name."""
    result = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={STACK_PROJECT}"],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.stdout.split():
        print(f"removing what is left of the compose project {STACK_PROJECT}", file=sys.stderr)
        # No compose file in workdir: Compose works on the project's labelled containers, networks, volumes.
        command = ["docker", "compose", "-p", STACK_PROJECT, "down", "--volumes", "--remove-orphans"]
        subprocess.run(command, cwd=workdir, capture_output=True, timeout=300)


def command_output(*command: str) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        return (result.stdout or result.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unavailable"


def machine() -> list[tuple[str, str]]:
    import locust

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?"
    )
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kib = int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal:")))
    os_release = Path("/etc/os-release")
    distro = "?"
    if os_release.is_file():
        for line in os_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    return [
        ("date (UTC)", now()),
        ("CPU", model),
        ("cores", str(os.cpu_count())),
        ("memory", f"{mem_kib / 1024**2:.1f} GiB"),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("OS", distro),
        ("Python", platform.python_version()),
        ("Locust", locust.__version__),
        ("Docker engine", command_output("docker", "version", "--format", "{{.Server.Version}}")),
        ("Docker Compose", command_output("docker", "compose", "version", "--short")),
        ("wrk", command_output("wrk", "--version")),
    ]


def fmt_ratio(values: list[float]) -> str:
    import statistics

    return f"{statistics.median(values):.2f} (min {min(values):.2f})" if values else "-"


def summary(outcomes: list[Outcome]) -> list[str]:
    figures = {o.section.name: o.figures for o in outcomes if o.figures}
    lines = ["## Summary", "", "| figure | value | target |", "| --- | --- | --- |"]
    loadgen = figures.get("loadgen")
    if loadgen:
        ratios, s = loadgen["ratios"], loadgen["summary"]
        lines += [
            f"| lab requests/s per worker process (median) | {s['lab']['median']:,.0f} | - |",
            f"| lab / plain Locust, requests/s, median (min) | {fmt_ratio(ratios['lab / plain'])} | ≥ 0.95 |",
            f"| lab / plain Locust, per worker CPU-second | {fmt_ratio(ratios['lab / plain, per worker CPU-second'])} "
            "| ≥ 0.95 |",
            f"| lab / wrk (the loopback ceiling) | {fmt_ratio(ratios['lab / wrk'])} | - |",
            f"| exporter on / off, requests/s | {fmt_ratio(ratios['exporter on / off'])} | no measurable loss |",
            f"| exporter on / off, per worker CPU-second "
            f"| {fmt_ratio(ratios['exporter on / off, per worker CPU-second'])} | no measurable loss |",
        ]
        for scrape in loadgen["scrapes"]:
            lines.append(
                f"| master CPU per scrape, {scrape['names']} names | {scrape['cpu_ms']:.0f} ms "
                f"({scrape['cpu_ms'] / 5000:.1%} of a core at a 5 s scrape interval) | - |"
            )
    exporter = figures.get("exporter")
    if exporter:
        for r in exporter["renders"]:
            target = exporter["targets_ms"].get(str(r["names"]))
            lines.append(
                f"| exporter CPU per scrape, {r['names']} names, before → now (every name changed) "
                f"| {r['old_cpu_ms']:.0f} → {r['new_cpu_ms']:.1f} ms ({r['old_cpu_ms'] / r['new_cpu_ms']:.1f}x cheaper) "
                f"| {f'≤ {target:g} ms' if target else '-'} |"
            )
    checkpoint = figures.get("checkpoint")
    if checkpoint:
        slopes = {v["variant"]: v["slope_mib_per_hour"] for v in checkpoint["variants"]}
        report_alone = slopes["Locust's HTML report alone"]
        lines.append(
            f"| RSS slope over {checkpoint['checkpoints']} checkpoints (one a minute), lab "
            f"(Locust's HTML report alone) | {slopes['lab']:+.1f} MiB/hour ({report_alone:+.1f}) | flat |"
        )
    stack = figures.get("stack")
    if stack:
        memory = sum(stack["idle_memory"].values()) / 1024**2
        before, after = stack["tsdb_before"], stack["tsdb_after"]
        wal_hour = (after["wal"] - before["wal"]) / (after["time"] - before["time"]) * 3600 / 1024**2
        lines += [
            f"| `lab up` to all healthy (fresh volumes) | {stack['up_fresh_s']:.0f} s | - |",
            f"| `lab down` | {stack['down_s']:.0f} s | - |",
            f"| idle stack memory | {memory:,.0f} MiB | - |",
            f"| Prometheus series, default scenario | {after['head_series']:,.0f} | - |",
            f"| Prometheus disk per hour (WAL, measured) | {wal_hour:,.0f} MiB | - |",
        ]
        for name, cost in stack["system_exporters"]["exporters"].items():
            lines.append(
                f"| {name}, idle: CPU, resident memory, series | {cost['cores']:.3f} cores, "
                f"{cost['rss_bytes'] / 1024**2:,.0f} MiB, {cost['series']:,} series | - |"
            )
    workers = figures.get("workers")
    if workers:
        for count in sorted({c["workers"] for c in workers["clusters"]}):
            pair = {c["variant"]: c["master_cpu_ratio"] for c in workers["clusters"] if c["workers"] == count}
            if len(pair) == 2:
                points = (pair["lab"] - pair["plain Locust"]) * 100
                lines.append(
                    f"| master CPU, lab − plain Locust, {count} workers | {points:+.1f} points "
                    f"(lab {pair['lab']:.1%}, plain {pair['plain Locust']:.1%}) "
                    f"| {'within 2 points' if count == 100 else '-'} |"
                )
    soak = figures.get("long-soak")
    if soak:
        for master in soak["masters"]:
            lines.append(
                f"| master RSS slope over the last two thirds of {soak['minutes']:g} minutes, {master['label']} "
                f"| {master['slope_mib_per_hour']:+.2f} ± {2 * master['standard_error']:.2f} MiB/hour (± 2 s.e.) "
                f"| {'within its error bar of 0' if master['label'] == 'with plugin' else '-'} |"
            )
    lines.append("")
    lines.append(
        "The other sections below hold the demo API's, the exporter's render and the soak's figures; "
        "each section's command, date and load are in the commands table."
    )
    return lines


def document(outcomes: list[Outcome], run_command: str, total_seconds: float) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Load Lab's own overhead, measured by `make bench` (`python bench/run.py`) on one machine. Regenerate "
        "this file with `make bench`; `--many-workers` and `--long-soak` add the two long sections to a run, and "
        "`python bench/run.py --only stack --update` re-measures one section in place. A run that leaves a "
        "section out carries it over from the last run that measured it: the commands table says when each "
        "section ran. `python bench/run.py --only loadgen` (without --update) prints one section.",
        "",
        "**Noise.** The machine below is small and was shared: other jobs (test suites, other compose stacks) "
        "ran at the same time, as the load averages in the commands table show. Absolute requests/s are "
        "therefore low and vary from run to run; the comparisons that matter are ratios of variants measured "
        "side by side in the same round, repeated, with their min and median, and requests per worker "
        "CPU-second, which does not depend on how much CPU the worker was given.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
    ]
    lines += [f"| {key} | {value} |" for key, value in machine()]
    lines += [
        "",
        "## Commands",
        "",
        f"`{run_command}` ran the sections not marked as carried over, one after the other, in "
        f"{total_seconds / 60:.1f} minutes (sections with figures in the summary also get `--json FILE`):",
        "",
        "| section | command | status | ran at (UTC) | minutes | load average before / after |",
        "| --- | --- | --- | --- | ---: | --- |",
    ]
    for o in outcomes:
        status = f"{o.status} (carried over)" if o.carried else o.status
        lines.append(
            f"| {o.section.name} | `{o.shown_command()}` | {status} | {o.measured} "
            f"| {f'{o.seconds / 60:.1f}' if o.seconds else '-'} | {o.load_before:.1f} / {o.load_after:.1f} |"
        )
    lines += ["", *summary(outcomes), ""]
    for o in outcomes:
        lines += [o.block(), ""]
    return "\n".join(lines)


def interrupt(*_) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C, or a plain kill, stops the running section and what it started. Started in the background
    # by a shell, a process inherits SIGINT ignored (and so would the sections): take it back.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    names = [s.name for s in SECTIONS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=names, help="run only this section (repeatable)")
    parser.add_argument("--quick", action="store_true", help="a fast smoke of each section")
    parser.add_argument(
        "--many-workers",
        action="store_true",
        help="also run the workers section (25, 50, 100 worker processes; beyond the 30-minute budget)",
    )
    parser.add_argument(
        "--long-soak",
        action="store_true",
        help=f"also run the {LONG_SOAK_MINUTES}-minute soak (beyond the 30-minute budget)",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help=f"with --only: put the sections it runs into {DOC.relative_to(REPO)}, keeping the others",
    )
    parser.add_argument(
        "--output", type=Path, help=f"write the document here (default for a full run: {DOC})"
    )
    args = parser.parse_args()
    if args.update and (not args.only or args.quick):
        parser.error("--update re-measures the sections named with --only (and not --quick)")
    output = args.output or (None if args.quick or (args.only and not args.update) else DOC)
    wanted = {"workers": args.many_workers, "long-soak": args.long_soak}
    sections = [
        s for s in SECTIONS if (s.name in args.only if args.only else not s.optional or wanted[s.name])
    ]
    run_command = shlex.join(["python", "bench/run.py", *sys.argv[1:]])

    ran: dict[str, Outcome] = {}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        try:
            for section in sections:
                # An optional section brings its own time on top of the default run's budget.
                extra = sum(s.timeout for s in sections if s.optional)
                budget = BUDGET_SECONDS + extra - (time.monotonic() - start)
                ran[section.name] = run_section(section, args.quick, Path(tmp), budget)
        finally:
            if any(s.name == "stack" for s in sections):
                remove_leftover_stack(Path(tmp))
    if output == DOC:  # what this run left out, as the last run that measured it wrote it
        earlier = earlier_outcomes(DOC)
        outcomes = [ran.get(s.name) or earlier.get(s.name) for s in SECTIONS]
        outcomes = [o for o in outcomes if o is not None]
    else:
        outcomes = list(ran.values())
    text = document(outcomes, run_command, time.monotonic() - start)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        print(f"\nwrote {output}", file=sys.stderr)
    else:
        print(text)
    return 0 if all(o.status == "ok" for o in ran.values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the running section was stopped and cleaned up on the way out
        print("\ninterrupted: everything the benchmarks started is stopped", file=sys.stderr)
        sys.exit(130)
