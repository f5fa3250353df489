"""Real PostgreSQL, Redis and Prometheus for tests and benchmarks, from the lab's own images.

    with PostgresServer() as pg, RedisServer() as redis:
        dsn = pg.create_database("app")       # postgresql://lab:lab@127.0.0.1:PORT/app
        ...
        pg.stop(); pg.start()                 # same port, same data: for recovery tests

Each server is a container of the image the stack runs (`lab_image`: the compose file's pin, or the offline
stand-in with LAB_OFFLINE=1, as `lab up` resolves it) on the host's network, listening on a free port of
127.0.0.1: the tests reach it there, and Prometheus reaches exporters the tests start on loopback. Files go
into containers through the engine's API (never bind mounts), so the tests also work from a container that
talks to the engine through its socket. Postgres and Redis are tuned for tests (no fsync, no persistence)
unless asked otherwise. Every container is removed on close(). Without an engine or an image, the test
skips with a reason that says what is missing.
"""

import asyncio
import io
import os
import re
import socket
import subprocess
import tarfile
import time
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path

import pytest

from lab.core.config import COMPOSE_FILE, Lab

ROOT = Path(__file__).resolve().parents[2]
LABEL = "loadlab.tests"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    predicate: Callable[[], object], timeout: float, interval: float = 0.05, what: str = ""
) -> object:
    """Poll `predicate` until it returns something truthy (returned); TimeoutError after `timeout` s.

    Exceptions from `predicate` count as "not yet" (a server still starting refuses connections).
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"gave up waiting {timeout:g}s for {what or predicate!r}{detail}")
        time.sleep(interval)


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def lab_image(key: str) -> str:
    """The image the stack runs for `key` (e.g. POSTGRES_IMAGE): the environment, then .env and
    compose/offline/offline.env (LAB_OFFLINE=1) as `lab` reads them, else the compose file's pin."""
    lab = Lab(home=ROOT, env_file=Path(os.environ.get("LAB_ENV_FILE") or ROOT / ".env"), project="tests")
    chosen = lab.settings().get(key)
    if chosen:
        return chosen
    pin = re.search(rf"\$\{{{key}:-([^}}]+)\}}", (ROOT / COMPOSE_FILE).read_text())
    if not pin:
        raise LookupError(f"{COMPOSE_FILE} has no ${{{key}:-image}} pin")
    return pin[1]


@cache
def docker_client():
    """The engine's client, or a skip naming what to install or start."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"needs a Docker engine (install Docker and start it, or set DOCKER_HOST): {exc}")
    return client


def image_for(key: str) -> str:
    """`lab_image(key)`, present on the engine: pulled if it is missing, else a skip naming the fix."""
    import docker

    image = lab_image(key)
    client = docker_client()
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        try:
            client.images.pull(image)
        except docker.errors.DockerException:
            pytest.skip(
                f"needs the image {image} ({key}): pull it, or build the offline images with "
                "`make images-offline` and set LAB_OFFLINE=1"
            )
    return image


def archive(files: Mapping[str, Path | str]) -> bytes:
    """A tar of `files` (path in the archive -> a file or folder here, or the text itself), readable by all."""

    def readable(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755 if info.isdir() else 0o644
        return info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, source in files.items():
            if isinstance(source, Path):
                tar.add(source, arcname=name, filter=readable)
            else:
                data = source.encode()
                info = readable(tarfile.TarInfo(name))
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Container:
    """One container of a lab image on the host's network; `files` are copied in before it starts."""

    def __init__(
        self,
        image_key: str,
        command: list[str],
        *,
        environment: Mapping[str, str] | None = None,
        entrypoint: list[str] | None = None,
        files: Mapping[str, Path | str] | None = None,
        working_dir: str | None = None,
    ) -> None:
        client = docker_client()
        self.container = client.containers.create(
            image_for(image_key),
            command,
            entrypoint=entrypoint,
            environment=dict(environment or {}),
            working_dir=working_dir,
            network_mode="host",
            labels={LABEL: str(os.getpid())},
        )
        if files:
            self.container.put_archive("/", archive(files))

    @property
    def running(self) -> bool:
        self.container.reload()
        return self.container.status == "running"

    def start(self) -> None:
        self.container.start()

    def logs(self, lines: int | str = "all") -> str:
        return self.container.logs(tail=lines).decode(errors="replace")

    def signal(self, name: str, timeout: float = 60) -> None:
        """Send `name` to the main process and wait for the container to exit."""
        if self.running:
            self.container.kill(signal=name)
            self.container.wait(timeout=timeout)

    def alive(self) -> bool:
        """True while running; a container that exited raises with its last log lines."""
        if not self.running:
            raise RuntimeError(f"{self.container.image.tags} exited:\n{self.logs(20)}")
        return True

    def remove(self) -> None:
        self.container.remove(force=True, v=True)


def promtool(
    *args: str, files: Mapping[str, Path | str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess:
    """Prometheus's own promtool, from the Prometheus image, run in /lab where `files` are copied.

    promtool reads metrics from stdin: `stdin` is fed from a file.
    """
    files = dict(files or {})
    entrypoint = ["promtool"]
    if stdin is not None:
        files["stdin"] = stdin
        # The upstream image is busybox, the stand-in Debian: both have sh.
        entrypoint = ["/bin/sh", "-c", 'exec promtool "$@" < /lab/stdin', "sh"]
    container = Container(
        "PROMETHEUS_IMAGE",
        list(args),
        entrypoint=entrypoint,
        working_dir="/lab",
        files={f"lab/{name}": source for name, source in files.items()},
    )
    try:
        container.start()
        code = container.container.wait(timeout=120)["StatusCode"]
        out = container.container.logs(stdout=True, stderr=False).decode(errors="replace")
        err = container.container.logs(stdout=False, stderr=True).decode(errors="replace")
        return subprocess.CompletedProcess(["promtool", *args], code, out, err)
    finally:
        container.remove()


class ContainerServer:
    """A server in one container (`self.container`, made by start()): removed on close() or leaving `with`."""

    container: Container | None = None

    @property
    def running(self) -> bool:
        return self.container is not None and self.container.running

    def close(self) -> None:
        if self.container is not None:
            self.container.remove()
            self.container = None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc_info) -> None:
        self.close()


class PostgresServer(ContainerServer):
    """A throw-away PostgreSQL: superuser `user`/`password`, listening on 127.0.0.1:`port`.

    `durable=False` (the default) turns fsync off: fast, and committed data still survives a crash of
    Postgres itself, only not of the machine. Benchmarks that measure writes should pass durable=True.
    """

    # pg_ctl's stop modes, as the signals the postmaster takes for them.
    STOP_SIGNALS = {"smart": "SIGTERM", "fast": "SIGINT", "immediate": "SIGQUIT"}

    def __init__(
        self, user: str = "lab", password: str = "lab", port: int | None = None, durable: bool = False
    ) -> None:
        self.user = user
        self.password = password
        self.port = port or free_port()
        self.durable = durable
        self.container: Container | None = None

    def start(self, timeout: float = 60) -> "PostgresServer":
        if self.container is None:
            command = ["postgres", "-p", str(self.port), "-c", "listen_addresses=127.0.0.1"]
            command += ["-c", "max_connections=200"]
            if not self.durable:
                # Survives a crash of Postgres (stop("immediate")), not of the machine: enough for tests.
                command += ["-c", "fsync=off", "-c", "full_page_writes=off"]
            environment = {"POSTGRES_USER": self.user, "POSTGRES_PASSWORD": self.password}
            # No database named after the user: tests create the databases they use.
            environment["POSTGRES_DB"] = "postgres"
            self.container = Container("POSTGRES_IMAGE", command, environment=environment)
        self.container.start()
        wait_until(self._ready, timeout, 0.2, f"postgres on port {self.port}")
        return self

    def _ready(self) -> bool:
        import asyncpg

        self.container.alive()

        async def probe() -> None:
            conn = await asyncpg.connect(self.dsn(), timeout=2)
            await conn.close()

        asyncio.run(probe())
        return True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server the way `pg_ctl -m fast|smart|immediate` does; the data stays for start()."""
        if self.container is not None:
            self.container.signal(self.STOP_SIGNALS[mode])

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database `name` (a plain identifier) and return its DSN."""
        import asyncpg

        async def create() -> None:
            conn = await asyncpg.connect(self.dsn())
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        return self.dsn(name)

    def log_tail(self, lines: int = 40) -> str:
        return self.container.logs(lines) if self.container else ""


class RedisServer(ContainerServer):
    """A throw-away Redis on 127.0.0.1:`port` with persistence off."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.container: Container | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30) -> "RedisServer":
        if self.container is None:
            command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            command += ["--save", "", "--appendonly", "no"]
            self.container = Container("REDIS_IMAGE", command)
        self.container.start()
        wait_until(self._ping, timeout, what=f"redis on port {self.port}")
        return self

    def _ping(self) -> bool:
        self.container.alive()
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def flushall(self) -> None:
        """Empty every database, so a test starts with a cold cache."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            reply = sock.recv(64)
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"FLUSHALL failed: {reply!r}")

    def stop(self, timeout: float = 30) -> None:
        if self.container is not None:
            self.container.signal("SIGTERM", timeout)


class PrometheusServer:
    """A Prometheus on 127.0.0.1:`port` that reads `config` (YAML text); `files` (name -> file or folder
    here) go beside it in /etc/prometheus, so the config names them by relative paths (rule files)."""

    def __init__(self, config: str, files: Mapping[str, Path | str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        tree = {"prometheus.yml": config, **(files or {})}
        self.container = Container(
            "PROMETHEUS_IMAGE",
            command,
            files={f"etc/prometheus/{name}": source for name, source in tree.items()},
        )

    def start(self, timeout: float = 60) -> "PrometheusServer":
        import requests

        self.container.start()

        def ready() -> bool:
            self.container.alive()
            return requests.get(f"{self.url}/-/ready", timeout=1).ok

        wait_until(ready, timeout, 0.2, "prometheus ready")
        return self

    def query(self, promql: str, **params) -> list:
        import requests

        response = requests.get(f"{self.url}/api/v1/query", params={"query": promql, **params}, timeout=5)
        response.raise_for_status()
        return response.json()["data"]["result"]

    def logs(self) -> str:
        return self.container.logs()

    def stop(self) -> None:
        self.container.remove()

    def __enter__(self) -> "PrometheusServer":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info) -> None:
        self.stop()
