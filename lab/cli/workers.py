"""`lab workers up|down`: Locust workers on this machine for a master on another (compose/workers.yml).

The workers are their own compose project (LAB_WORKERS_PROJECT, default loadlab-workers) with the
image and locustfile settings of this checkout's .env, so they match the master when .env is a copy
of the master's. They join over the master's published worker port (`lab up` with LAB_EXPOSE_MASTER=1
on the master's machine); the master refuses workers of another Locust version (lab.plugin.handshake), and a
worker is healthy only once accepted, so `up --wait` tells whether they all joined.
"""

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

from lab.cli import preflight
from lab.core.config import Lab
from lab.core.errors import LabError

WORKERS_FILE = Path("compose/workers.yml")
DEFAULT_MASTER_PORT = 5557
WAIT_SECONDS = 150
REFUSED = "the master refused this worker: "


def register(subparsers) -> None:
    workers = subparsers.add_parser("workers", help="Locust workers on this machine for a master on another")
    actions = workers.add_subparsers(dest="workers_action", metavar="ACTION", required=True)

    up = actions.add_parser(
        "up", help="start workers that join a remote master and wait until it accepts them"
    )
    up.add_argument(
        "--master",
        required=True,
        type=master_address,
        metavar="HOST[:PORT]",
        help=f"the master's address and published worker port (default port {DEFAULT_MASTER_PORT})",
    )
    up.add_argument(
        "--count",
        type=_positive,
        default=os.cpu_count() or 1,
        help="worker processes (default one per core of this machine: %(default)s)",
    )
    up.add_argument(
        "--name",
        default=socket.gethostname(),
        help="this machine's name in the master's worker labels (default the host name: %(default)s)",
    )
    up.add_argument("--offline", action="store_true", help="use the offline image (same as LAB_OFFLINE=1)")
    up.set_defaults(func=up_command)

    down = actions.add_parser(
        "down", help="stop and remove this machine's workers (the master sees them leave)"
    )
    down.set_defaults(func=down_command)


def master_address(text: str) -> tuple[str, int]:
    """HOST, HOST:PORT, [IPv6] or [IPv6]:PORT -> (host, port)."""
    host, port = text, str(DEFAULT_MASTER_PORT)
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            host = ""
        port = rest[1:] if rest else port
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or not host.strip() or any(c in host for c in "/ ") or host != host.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not HOST[:PORT]: give the master machine's address, e.g. 10.0.0.5:5557"
        )
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: the port must be a number from 1 to 65535")
    return host, int(port)


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return int(value)


def project(lab: Lab) -> str:
    return lab.setting("LAB_WORKERS_PROJECT", "loadlab-workers")


def compose_command(lab: Lab, *args: str) -> list[str]:
    command = ["docker", "compose", "-p", project(lab), "--project-directory", str(lab.home)]
    command += ["-f", str(lab.home / WORKERS_FILE)]
    for path in lab.env_files():
        if path.is_file():
            command += ["--env-file", str(path)]
    return command + list(args)


def refusal_in(logs: str) -> str | None:
    """The master's reason, from the workers' logs, if it refused them."""
    for line in logs.splitlines():
        if REFUSED in line:
            return line.split(REFUSED, 1)[1].strip()
    return None


def up_command(args) -> int:
    if args.offline:
        os.environ["LAB_OFFLINE"] = "1"
    lab = Lab.from_environment()
    lab.settings()  # a malformed .env is refused before anything starts
    client = preflight.docker_client()
    preflight.compose_v2()
    if not lab.env_file.is_file():
        print(
            f"note: no {lab.env_file}: copy the master's .env here so that the workers run its image "
            "and the demo locustfile has the seeded users' password",
            file=sys.stderr,
        )
    host, port = args.master
    env = {
        **os.environ,
        "LAB_MASTER_HOST": host,
        "LAB_MASTER_PORT": str(port),
        "LAB_WORKER_HOSTNAME": args.name,
    }
    # The image is found, pulled or built before the wait, so that a missing one is named, not waited for.
    images = preflight.stack_images(compose_command(lab), env=env, cwd=lab.home)
    preflight.require_images(
        client, images, lambda *a: compose_command(lab, *a), lab.offline, env=env, cwd=lab.home
    )
    command = compose_command(
        lab, "up", "--detach", "--wait", "--wait-timeout", str(WAIT_SECONDS), "--remove-orphans"
    )
    command += ["--scale", f"locust-worker={args.count}"]
    if subprocess.run(command, env=env, cwd=lab.home).returncode == 0:
        print(
            f"\n{args.count} worker(s) joined the master at {host}:{port}; it labels them "
            f"{args.name}/<index>. Stop them with `lab workers down`."
        )
        return 0
    logs = subprocess.run(
        compose_command(lab, "logs", "--no-color", "--no-log-prefix", "locust-worker"),
        env=env,
        cwd=lab.home,
        capture_output=True,
        text=True,
    ).stdout
    subprocess.run(["docker", "compose", "-p", project(lab), "down"], capture_output=True)
    reason = refusal_in(logs)
    if reason:
        raise LabError(f"the master refused the workers: {reason} (the workers were removed)")
    print("\n".join(logs.splitlines()[-15:]), file=sys.stderr)
    raise LabError(
        f"the workers did not join the master at {host}:{port} within {WAIT_SECONDS}s (their last log "
        "lines are above; the workers were removed): check that the master runs `lab up` with "
        "LAB_EXPOSE_MASTER=1 and LAB_MASTER_BIND, and that this machine reaches that address and port"
    )


def down_command(args) -> int:
    lab = Lab.from_environment()
    preflight.compose_v2()
    # By project name: the workers' settings (master, count) are not needed to remove them.
    return subprocess.run(["docker", "compose", "-p", project(lab), "down"]).returncode
