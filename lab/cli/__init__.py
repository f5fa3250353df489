"""The `lab` command line: each subcommand lives in the module named for what it does.

Every command module exposes `register(subparsers)`, which adds its parsers and sets `func`
to a callable taking the parsed args and returning an exit code. Modules keep heavy imports
inside their functions so that `lab --help` stays fast.
"""

import argparse
import importlib
import signal
import sys

from lab import __version__
from lab.core.errors import LabError
from lab.core.files import fix_for

COMMAND_MODULES = (
    "lab.cli.stack",  # up, down, status, logs
    "lab.cli.run",  # run SCENARIO
    "lab.cli.runs",  # runs
    "lab.dashboards",  # dashboards
    "lab.report",  # report
    "lab.report.compare",  # compare
    "lab.cli.workers",  # workers up/down on another machine
)


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line, like the lab's own (the usage is one --help away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lab", description="Load Lab: a Docker Compose lab for load testing.")
    parser.add_argument("--version", action="version", version=f"lab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # SIGINT stops what lab is doing (e.g. `lab run` stops its test) also when a script started lab in
    # the background, which leaves SIGINT ignored and Python then without its KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # A path or the machine refused (permissions, a full disk, a missing folder) somewhere no
        # LabError names it yet: still one line with the path and the cause, not a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"lab: error: {where}{exc.strerror or exc}: {fix_for(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lab: interrupted", file=sys.stderr)
        return 130
