"""A loopback HTTP target for the exporter tests: /fail/... answers 500, `delay_ms` slows a reply."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body in two writes wait 40 ms for a delayed ACK

    def do_GET(self):
        url = urlsplit(self.path)
        delay_ms = int(parse_qs(url.query).get("delay_ms", ["0"])[0])
        time.sleep(delay_ms / 1000)
        status = 500 if url.path.startswith("/fail/") else 200
        body = b"ok\n" * (1 + len(url.path) % 7)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self.server.lock:
            self.server.served += 1

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()
        self.served = 0  # responses sent: the benchmark's real-time requests/s

    def handle_error(self, request, client_address):
        pass  # users stopped mid-request close their connections: expected, not worth a traceback


def serve() -> Server:
    """A server on a free loopback port; run `serve_forever` in a thread and `shutdown` it after."""
    return Server(("127.0.0.1", 0), Handler)
