"""A small client for Prometheus's HTTP API: instant and range queries.

Failures (unreachable server, HTTP errors, PromQL errors) become one-line `LabError`s that name
the URL and the fix, so every command that reads Prometheus reports them the same way.
"""

import requests

from lab.core.errors import LabError


def label_value(text: str) -> str:
    """Quote a string as a PromQL label value."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class Prometheus:
    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, promql: str, time: float | None = None) -> list[dict]:
        """Instant query: the `result` list of a vector (each {"metric": {...}, "value": [t, "v"]})."""
        params = {"query": promql}
        if time is not None:
            params["time"] = f"{time:.3f}"
        return self._get("/api/v1/query", params)

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[dict]:
        """Range query: the `result` list of a matrix (each {"metric": {...}, "values": [[t, "v"], ...]})."""
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        return self._get("/api/v1/query_range", params)

    def _get(self, path: str, params: dict) -> list[dict]:
        try:
            response = requests.get(self.url + path, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise LabError(
                f"Prometheus is unreachable at {self.url} ({type(exc).__name__}): "
                "start the stack with `lab up` or pass --prometheus URL / set PROMETHEUS_URL"
            ) from None
        try:
            body = response.json()
        except ValueError:
            raise LabError(
                f"{self.url}{path} answered HTTP {response.status_code} without JSON: "
                "is --prometheus pointing at Prometheus?"
            ) from None
        if body.get("status") != "success":
            error = body.get("error", f"HTTP {response.status_code}")
            raise LabError(f"Prometheus at {self.url} rejected the query {params['query']!r}: {error}")
        return body["data"]["result"]
