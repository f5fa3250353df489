"""Checks before `lab up`: each failure is one line naming the problem and the fix."""

import errno
import re
import shutil
import socket
import subprocess

import docker
from docker.errors import DockerException

from lab.core.config import Lab
from lab.core.errors import LabError

# Published ports and the setting that moves each one.
PUBLISHED = (("GRAFANA_PORT", "3000"), ("LOCUST_WEB_PORT", "8089"), ("PROMETHEUS_PORT", "9090"))


def docker_client():
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except DockerException as exc:
        raise LabError(
            f"no Docker engine is reachable ({_first_line(exc)}): start it (e.g. `sudo systemctl start docker`)"
            " or set DOCKER_HOST"
        ) from None
    return client


def compose_v2() -> str:
    """The Compose v2 version, or a LabError saying how to get it."""
    try:
        result = subprocess.run(
            ["docker", "compose", "version", "--short"], capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        raise LabError("the docker CLI is not installed: install Docker (engine and CLI)") from None
    version = result.stdout.strip().lstrip("v")
    if result.returncode == 0 and re.match(r"^[2-9]\.", version):
        return version
    legacy = shutil.which("docker-compose")
    found = f" (found Compose v1 at {legacy})" if legacy else ""
    raise LabError(
        f"Docker Compose v2 is missing{found}: install the `docker compose` plugin"
        " (package docker-compose-plugin, or see README, Troubleshooting)"
    )


def ports_free(lab: Lab, client) -> None:
    """Refuse published ports that something other than this lab already holds."""
    ours = {
        int(binding["HostPort"])
        for container in client.containers.list(
            filters={"label": f"com.docker.compose.project={lab.project}"}
        )
        for bindings in (container.ports or {}).values()
        for binding in bindings or ()
    }
    bind = lab.setting("LAB_BIND", "127.0.0.1")
    for key, default in PUBLISHED:
        value = lab.setting(key, default)
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise LabError(
                f"{key}={value!r} is not a port number: set {key} in {lab.env_file} to a free port"
            )
        port = int(value)
        if port in ours:
            continue
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As servers do: connections lingering in TIME_WAIT do not hold the port.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((bind, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise LabError(
                        f"port {port} on {bind} is already taken: free it or set {key} in {lab.env_file}"
                    ) from None
                raise LabError(
                    f"cannot bind {bind}:{port} ({exc.strerror}): check LAB_BIND in {lab.env_file}"
                ) from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
