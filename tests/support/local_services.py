"""Real PostgreSQL and Redis servers on free loopback ports in temp folders, for tests and benchmarks.

    with PostgresServer() as pg, RedisServer() as redis:
        dsn = pg.create_database("app")       # postgresql://lab:lab@127.0.0.1:PORT/app
        ...
        pg.stop(); pg.start()                 # same port, same data: for recovery tests

PostgreSQL 15 runs from /usr/local/bin (initdb, pg_ctl, postgres); it refuses to run as root, so when
we are root it runs as an unprivileged user (LAB_PG_OS_USER, else `postgres`, else `nobody`) through
`runuser`. redis-server is Debian's (/usr/bin). Both are tuned for tests (no fsync, no persistence)
unless asked otherwise. Every server stops, and its folder is removed, on close().
"""

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PG_BIN = Path(os.environ.get("LAB_PG_BIN", "/usr/local/bin"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


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


def _unprivileged_user() -> str | None:
    """None when we are not root (run as ourselves), else the OS user that will own Postgres."""
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("LAB_PG_OS_USER"), "postgres", "nobody"):
        if name:
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
    raise RuntimeError("no unprivileged OS user to run Postgres: create one and set LAB_PG_OS_USER")


class PostgresServer:
    """A throw-away PostgreSQL cluster: superuser `user`/`password`, listening on 127.0.0.1:`port`.

    `durable=False` (the default) turns fsync off: fast, and committed data still survives a crash of
    Postgres itself, only not of the machine. Benchmarks that measure writes should pass durable=True.
    """

    def __init__(
        self, user: str = "lab", password: str = "lab", port: int | None = None, durable: bool = False
    ) -> None:
        if not (PG_BIN / "pg_ctl").exists():
            raise RuntimeError(f"{PG_BIN}/pg_ctl not found: install PostgreSQL 15 there or set LAB_PG_BIN")
        self.user = user
        self.password = password
        self.port = port or free_port()
        self.durable = durable
        self.os_user = _unprivileged_user()
        self.dir = Path(tempfile.mkdtemp(prefix="lab-pg-"))
        self.data_dir = self.dir / "data"
        self.log_file = self.dir / "postgres.log"
        self._initialized = False
        self.running = False

    def _run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        command = [str(a) for a in args]
        if self.os_user:
            command = ["runuser", "-u", self.os_user, "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)

    def _initdb(self) -> None:
        if self.os_user:
            shutil.chown(self.dir, self.os_user)
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.os_user:
            shutil.chown(pwfile, self.os_user)
        self._run(
            PG_BIN / "initdb",
            "-D", self.data_dir, "-U", self.user, "--pwfile", pwfile,
            "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        self._initialized = True

    def start(self, timeout: float = 30) -> "PostgresServer":
        if not self._initialized:
            self._initdb()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c max_connections=200"
        if not self.durable:
            # Survives a crash of Postgres (stop("immediate")), not of the machine: enough for tests.
            options += " -c fsync=off -c full_page_writes=off"
        self._run(
            PG_BIN / "pg_ctl", "-D", self.data_dir, "-l", self.log_file, "-o", options,
            "-w", "-t", str(int(timeout)), "start",
        )  # fmt: skip
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (pg_ctl -m fast|smart|immediate); the data stays for start()."""
        if self.running:
            self._run(PG_BIN / "pg_ctl", "-D", self.data_dir, "-m", mode, "-w", "stop")
            self.running = False

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
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()


class RedisServer:
    """A throw-away redis-server on 127.0.0.1:`port` with persistence off."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="lab-redis-"))
        self.log_file = self.dir / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10) -> "RedisServer":
        self.process = subprocess.Popen(
            [
                REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--save", "", "--appendonly", "no", "--logfile", str(self.log_file), "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: self._ping(), timeout, what=f"redis-server on port {self.port}")
        return self

    def _ping(self) -> bool:
        if not self.running:
            raise RuntimeError(f"redis-server exited with {self.process.returncode}: see {self.log_file}")
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

    def stop(self, timeout: float = 10) -> None:
        if self.running:
            self.process.terminate()
            self.process.wait(timeout)
        self.process = None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()
