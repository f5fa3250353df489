"""A third-party-like API for the own-API end-to-end test: the routes of locust/examples/own_api.py
(GET /, GET /products/<id>, POST /cart), instrumented as an OpenTelemetry-style service would be
(`http_server_request_duration_seconds` with `http_route`, `http_request_method` and
`http_response_status_code`) plus prometheus_client's own `process_*` series, served on /metrics.

Run it as `python -m tests.e2e.own_api_target ADDRESS` from the repository root: it listens on ADDRESS
and a free port, and prints the port.
"""

import re
import sys
import time
from http.server import BaseHTTPRequestHandler

from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest

from tests.integration.exporter_target import Server

DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests.",
    ["http_request_method", "http_route", "http_response_status_code"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10),
)
ROUTES = (
    ("GET", re.compile(r"^/$"), "/", 200),
    ("GET", re.compile(r"^/products/\d+$"), "/products/{id}", 200),
)
ROUTES += (("POST", re.compile(r"^/cart$"), "/cart", 201),)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/metrics":  # not a request of the API: not counted in its histogram
            self.answer(200, generate_latest(), CONTENT_TYPE_LATEST)
            return
        self.serve("GET")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.serve("POST")

    def serve(self, method: str) -> None:
        started = time.perf_counter()
        route, status = next(
            ((name, code) for m, pattern, name, code in ROUTES if m == method and pattern.match(self.path)),
            ("", 404),
        )
        sum(i * i for i in range(20_000))  # some CPU a request, as real handlers spend
        self.answer(status, b'{"ok": true}', "application/json")
        DURATION.labels(method, route, str(status)).observe(time.perf_counter() - started)

    def answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


def main() -> None:
    server = Server((sys.argv[1], 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
