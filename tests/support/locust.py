"""Locust processes for tests and benchmarks: a master with N workers, or a local runner, with the lab's plugin.

    with LocustProcesses(workdir, [locustfile, PLUGIN], workers=2, web=True, exporter=True,
                         args=["--host", url, "Shopper"]) as locust:
        locust.wait_ready()                  # the web UI answers and both workers are connected
        requests.post(f"{locust.web_url}/swarm", ...)

    locust = LocustProcesses(workdir, files, workers=1, headless=True, args=[...]).start()
    code = locust.wait(timeout=150)          # a headless run stops by itself: its master's exit code

Every process runs this interpreter (or `python`) with the repository on PYTHONPATH, in `workdir`, on
loopback ports of its own; its output goes to `workdir/<name>.log` unless `stdout` says otherwise.
stop() (or leaving the `with`) terminates the workers and the master, and kills what does not exit.
"""

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.local_services import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "compose" / "locust" / "lab_plugin.py"


def locust_env(results_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """This environment with the repository importable, unbuffered output and the results folder."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}
    if results_dir is not None:
        env["LAB_RESULTS_DIR"] = str(results_dir)
    return env


def locust_command(locustfiles: Sequence[str | Path], *args: str, python: str = sys.executable) -> list[str]:
    return [python, "-m", "locust", "-f", ",".join(map(str, locustfiles)), *map(str, args)]


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` s."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class LocustProcesses:
    """A Locust master (`workers` > 0 or `master=True`) with worker processes, or a local runner.

    `web` gives the master a web UI on 127.0.0.1 (`web_url`), `exporter` the lab's exporter (`metrics_url`),
    `headless` runs without a UI and waits for the workers (--expect-workers). `args` go to the master or
    local runner, `worker_args` to each worker. `stdout` is where the master writes (default: `<name>.log`
    in `workdir`; subprocess.PIPE for text to read; subprocess.DEVNULL); workers write to their own logs.
    """

    def __init__(
        self,
        workdir: Path,
        locustfiles: Sequence[str | Path],
        *,
        workers: int = 0,
        master: bool | None = None,
        headless: bool = False,
        web: bool = False,
        exporter: bool = False,
        args: Sequence[str] = (),
        worker_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        stdout: int | None = None,
        name: str = "master",
        python: str = sys.executable,
    ) -> None:
        self.workdir = workdir
        self.locustfiles = list(locustfiles)
        self.worker_count = workers
        self.env = dict(env) if env is not None else locust_env(workdir / "results")
        self.stdout = stdout
        self.name = name
        self.python = python
        self.worker_args = list(worker_args)
        self.master_port = free_port()
        self.web_port = free_port() if web else None
        self.web_url = f"http://127.0.0.1:{self.web_port}" if web else None
        self.exporter_port = free_port() if exporter else None
        self.metrics_url = f"http://127.0.0.1:{self.exporter_port}/metrics" if exporter else None
        self.is_master = workers > 0 if master is None else master
        command: list[str] = []
        if self.is_master:
            command += [
                "--master",
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                str(self.master_port),
            ]
            if headless:
                command += ["--expect-workers", str(workers)]
        if headless:
            command.append("--headless")
        if web:
            command += ["--web-host", "127.0.0.1", "--web-port", str(self.web_port)]
        if exporter:
            command += ["--exporter-port", str(self.exporter_port), "--exporter-host", "127.0.0.1"]
        self.master_command = locust_command(self.locustfiles, *command, *args, python=python)
        self.master: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self._logs: list = []

    def _spawn(self, command: list[str], name: str, env: Mapping[str, str], stdout: int | None):
        if stdout is None:
            log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
            self._logs.append(log)
            return subprocess.Popen(command, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        text = stdout == subprocess.PIPE
        return subprocess.Popen(
            command, cwd=self.workdir, env=env, stdout=stdout, stderr=subprocess.STDOUT, text=text
        )

    def start(self) -> "LocustProcesses":
        self.master = self._spawn(self.master_command, self.name, self.env, self.stdout)
        for _ in range(self.worker_count):
            self.add_worker(stdout=None)
        return self

    def add_worker(
        self,
        python: str | None = None,
        locustfiles: Sequence[str | Path] | None = None,
        env: Mapping[str, str] | None = None,
        stdout: int | None = None,
    ) -> subprocess.Popen:
        """One more worker for the master (another interpreter, locustfile or environment if given),
        writing to `stdout` (default: `worker<N>.log`)."""
        command = locust_command(
            locustfiles or self.locustfiles,
            "--worker", "--master-host", "127.0.0.1", "--master-port", str(self.master_port),
            *self.worker_args,
            python=python or self.python,
        )  # fmt: skip
        worker = self._spawn(command, f"worker{len(self.workers)}", env or self.env, stdout)
        self.workers.append(worker)
        return worker

    def wait_ready(self, timeout: float = 60, auth: tuple[str, str] | None = None) -> None:
        """The web UI answers (any status: a password-protected one says 401), and every worker is connected."""
        # Imported here: requests loads ssl, which a benchmark that runs Locust in-process (bench/workers.py)
        # must import only after gevent has patched it.
        import requests

        def ready() -> bool:
            if self.master.poll() is not None:
                raise RuntimeError(f"the Locust master exited with {self.master.returncode}:\n{self.logs()}")
            response = requests.get(f"{self.web_url}/stats/requests", auth=auth, timeout=2)
            if not self.workers:
                return True
            return response.ok and response.json()["worker_count"] >= len(self.workers)

        wait_until(ready, timeout, 0.2, "the Locust master's web UI and its workers")

    def wait(self, timeout: float) -> int:
        """The master's exit code once it has stopped by itself (a headless run), its workers too."""
        self.master.wait(timeout)
        for worker in self.workers:
            worker.wait(timeout)
        return self.master.returncode

    def stop(self, timeout: float = 20) -> None:
        """Terminate the workers and the master (the master quits its workers too); kill what stays."""
        for process in [*self.workers, self.master]:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.master]:
            if process is not None:
                stop_process(process, timeout)
        for log in self._logs:
            log.close()

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-tail:]}" for p in sorted(self.workdir.glob("*.log")))

    def __enter__(self) -> "LocustProcesses":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
