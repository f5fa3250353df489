"""A loopback HTTP target with a fixed capacity for the scenario tests: it answers any GET or POST
with 200, serving at most `--slots` requests at a time, each taking `--service-ms`, so its
throughput has a ceiling (a knee) and latency grows past it. Run it as `python scenarios_target.py PORT`."""

import argparse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--service-ms", type=float, default=20.0)
    args = parser.parse_args()
    slots = threading.Semaphore(args.slots)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self):
            self.read_body()
            with slots:
                time.sleep(args.service_ms / 1000)
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def read_body(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)

        def log_message(self, *_args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # users stopped mid-request close their connections: expected

    Server(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
