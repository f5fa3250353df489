"""The Locust master's healthcheck: its exporter answers on LOCUST_EXPORTER_PORT, or with the exporter
off (0) its web UI answers at all (a 401 from a UI behind LOCUST_WEB_PASSWORD is an answer)."""

import os
import sys
import urllib.error
import urllib.request

port = os.environ.get("LOCUST_EXPORTER_PORT") or "9646"
url = f"http://127.0.0.1:{port}/metrics" if port != "0" else "http://127.0.0.1:8089/"
try:
    urllib.request.urlopen(url, timeout=3).close()
except urllib.error.HTTPError as exc:
    sys.exit(0 if port == "0" else f"{url} answered HTTP {exc.code}")
except OSError as exc:
    sys.exit(f"{url}: {exc}")
