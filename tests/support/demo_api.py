"""The demo API (compose/api/demoapi) run for real: uvicorn in a subprocess on a free loopback port.

    with DemoApi({"DATABASE_URL": dsn, "REDIS_URL": redis.url, ...}) as api:
        api.client().get("/healthz")

The environment given is added to a minimal one (PATH, PYTHONPATH with compose/api); API_SECRET_KEY
gets a test value unless given. Output goes to a log file (`log_text()`), so tests can read the JSON logs.
"""

import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import requests

from tests.support.local_services import free_port, wait_until

API_DIR = Path(__file__).resolve().parents[2] / "compose" / "api"


class ApiClient(requests.Session):
    """A requests session whose URLs are paths on one API (requests, not httpx: the test process may
    be patched by gevent for Locust, and httpx's optional trio import breaks under that patch)."""

    def __init__(self, base_url: str, timeout: float = 15) -> None:
        super().__init__()
        self.base_url = base_url
        self.timeout = timeout

    def request(self, method: str, url: str, *args, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, self.base_url + url, *args, **kwargs)


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
        return response.status == 200


class DemoApi:
    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(API_DIR),
            "API_SECRET_KEY": "test-secret-key-for-loadlab-tests-only",
            "LOG_LEVEL": "INFO",
            **env,
        }
        self.log_path = Path(tempfile.mkstemp(prefix="lab-api-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "DemoApi":
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "demoapi.main:app", "--host", "127.0.0.1",
                 "--port", str(self.port), "--no-access-log", "--timeout-keep-alive", "75"],  # as the image
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=API_DIR,
            )  # fmt: skip

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"API exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
            return _healthy(self.url)

        try:
            wait_until(up, timeout, interval=0.1, what=f"the demo API on port {self.port}")
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def client(self) -> ApiClient:
        return ApiClient(self.url)

    def metrics(self) -> dict[tuple[str, frozenset], float]:
        """Scrape /metrics: {(sample name, frozenset of label items): value}."""
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as response:
            text = response.read().decode()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def metric(self, name: str, **labels: str) -> float:
        """One sample's value from a fresh scrape; 0 when the series does not exist (yet)."""
        return self.metrics().get((name, frozenset(labels.items())), 0.0)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> "DemoApi":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()
