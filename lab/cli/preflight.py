"""Checks before `lab up`: each failure is one line naming the problem and the fix."""

import errno
import json
import re
import shutil
import socket
import subprocess
from collections.abc import Callable

import docker
from docker.errors import DockerException, ImageNotFound

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


OFFLINE_FIX = (
    "build the offline images with `make images-offline` and use them with --offline (LAB_OFFLINE=1)"
)


def stack_images(config_command: list[str], **run_kw) -> dict[str, dict]:
    """The images Compose will run, resolved as Compose resolves them (`docker compose config`: .env,
    the offline overrides, the active profiles): image -> {"services": [...], "build": whether Compose
    can build it, "base": the base image that build needs}."""
    result = subprocess.run(
        [*config_command, "config", "--format", "json"], capture_output=True, text=True, timeout=60, **run_kw
    )
    if result.returncode != 0:
        raise LabError(f"Compose refused the lab's settings: {_first_line(Exception(result.stderr))}")
    images: dict[str, dict] = {}
    for name, service in sorted((json.loads(result.stdout).get("services") or {}).items()):
        image = service.get("image")
        if not image:
            continue
        entry = images.setdefault(image, {"services": [], "base": None, "build": False})
        entry["services"].append(name)
        if "build" in service:
            entry["build"] = True
            entry["base"] = ((service["build"] or {}).get("args") or {}).get("BASE")
    return images


def image_state(client, image: str) -> tuple[str, str]:
    """("present", ""), ("pullable", ""), or ("absent", why it cannot be pulled).

    Asks the registry for the image's manifest only (no download): an unreachable registry answers at once.
    """
    try:
        client.images.get(image)
        return "present", ""
    except ImageNotFound:
        pass
    try:
        client.images.get_registry_data(image)
        return "pullable", ""
    except DockerException as exc:
        cause = getattr(exc, "explanation", None) or str(exc)
        return "absent", _first_line(Exception(cause))


def require_images(
    client,
    images: dict[str, dict],
    compose: Callable[..., list[str]],
    offline: bool,
    build: bool = False,
    **run_kw,
) -> None:
    """Stop before Compose starts anything when an image can be neither found, pulled nor built; then
    pull and build what is missing, each failure ending the command with its cause.

    `compose(*args)` is the stack's compose command; `build` rebuilds every image that has a build.
    """
    missing = unobtainable(client, images)
    if missing:
        image, why = missing[0]
        fix = "build the offline images with `make images-offline`" if offline else OFFLINE_FIX
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise LabError(f"image {image} is not here and {why}{more}: {fix}")
    to_pull, to_build = [], []
    for entry in images.values():
        if entry["build"] and (build or entry["state"] != "present"):
            to_build += entry["services"][:1]
        elif not entry["build"] and entry["state"] != "present":
            to_pull += entry["services"]
    if to_pull and subprocess.run(compose("pull", *to_pull), **run_kw).returncode != 0:
        raise LabError(
            f"pulling the images of {', '.join(to_pull)} failed (Docker's reason is above): "
            f"fix what it names, or {OFFLINE_FIX}"
        )
    if to_build and subprocess.run(compose("build", *to_build), **run_kw).returncode != 0:
        raise LabError(
            f"building the images of {', '.join(to_build)} failed (the build's output is above): "
            f"fix what it names, or {OFFLINE_FIX}"
        )


def unobtainable(client, images: dict[str, dict]) -> list[tuple[str, str]]:
    """(image, why) for each image that is not here and can be neither pulled nor built here; notes
    each image's state in its entry."""
    missing = []
    for image, entry in images.items():
        entry["state"], cause = image_state(client, image)
        if entry["state"] != "absent":
            continue
        if not entry["build"]:
            missing.append((image, f"cannot be pulled ({cause})"))
        elif entry["base"]:
            base_state, base_cause = image_state(client, entry["base"])
            if base_state == "absent":
                missing.append(
                    (
                        image,
                        f"cannot be built: its base image {entry['base']} is not here either ({base_cause})",
                    )
                )
    return missing
