"""TARGET_METRICS: your own API's metrics endpoints, scraped by Prometheus as the job `target`.

Prometheus cannot read the lab's settings, so `lab up` writes them into a file_sd targets file
(prometheus/targets/<project>/target.json, git-ignored), which the compose file mounts read-only at
/etc/prometheus/targets and prometheus.yml's `target` job reads; Prometheus picks up a change without
a restart. One folder a compose project, so that two labs from one checkout (yours and the tests')
never scrape each other's endpoints. An empty setting writes an empty list: the job has no targets.
"""

import contextlib
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

from lab.core.config import Lab
from lab.core.errors import LabError
from lab.core.files import write_atomic

SETTING = "TARGET_METRICS"
TARGETS_DIR = Path("prometheus") / "targets"
TARGETS_FILE = "target.json"
EXAMPLE = "host.docker.internal:8000/metrics"
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]+\]$")


def parse(value: str) -> list[dict]:
    """The targets file's groups for a setting of comma-separated `[http[s]://]host[:port][/path]`
    (path default /metrics, scheme default http): one group an endpoint, its path and scheme as
    Prometheus's `__metrics_path__` and `__scheme__` labels. A bad entry is a LabError naming it."""
    groups = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        groups.append(_group(entry))
    return groups


def _group(entry: str) -> dict:
    def bad(why: str) -> LabError:
        return LabError(
            f"{SETTING}: {entry!r} {why}: set {SETTING} in .env to comma-separated "
            f"[http[s]://]host[:port][/path] endpoints, e.g. {SETTING}={EXAMPLE}"
        )

    url = urlsplit(entry if "://" in entry else f"http://{entry}")
    if url.scheme not in ("http", "https"):
        raise bad(f"has scheme {url.scheme!r} (Prometheus scrapes http or https)")
    if url.username is not None or url.password is not None:
        raise bad("holds credentials (a targets file cannot carry them; add a scrape job with basic_auth)")
    if url.query or url.fragment or " " in entry:
        raise bad("has a query, a fragment or a space")
    try:
        port = url.port
    except ValueError:
        raise bad("has a port that is not a number from 1 to 65535") from None
    host = url.netloc.rsplit(":", 1)[0] if port is not None else url.netloc
    if not _HOST.match(host):
        raise bad("has no valid host name")
    if port == 0:
        raise bad("has port 0")
    return {
        "targets": [url.netloc],
        "labels": {"__metrics_path__": url.path or "/metrics", "__scheme__": url.scheme},
    }


def path(lab: Lab) -> Path:
    return lab.home / TARGETS_DIR / lab.project / TARGETS_FILE


def write(lab: Lab, groups: list[dict]) -> None:
    """Write the targets file (atomically: Prometheus watches it) with the groups `parse` made."""
    # Readable by Prometheus's own user in its container, whatever the umask.
    write_atomic(
        path(lab),
        json.dumps(groups, indent=2) + "\n",
        mode=0o644,
        fix=f"make {lab.home / TARGETS_DIR} writable",
    )


def remove(lab: Lab) -> None:
    """`lab down`: the project's targets file and its folder go with its containers (`lab up` writes them
    again), so that no project leaves its folder behind."""
    path(lab).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # a folder that holds something else stays
        path(lab).parent.rmdir()
