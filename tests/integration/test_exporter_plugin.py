"""The plugin entry in a fresh Python process: Locust may load it twice, listeners register once."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.locust import locust_command, locust_env

REPO = Path(__file__).resolve().parent.parent.parent

PROBE = """
import json, runpy
from locust import events

def counts():
    return {name: len(getattr(events, name)._handlers) for name in ("init", "init_command_line_parser", "test_start", "test_stop", "reset_stats", "worker_report", "quitting")}

runpy.run_path("compose/locust/lab_plugin.py")  # what Locust's -f loads
first = counts()
runpy.run_path("compose/locust/lab_plugin.py")  # loaded again (e.g. named twice in -f)
runpy.run_path("lab/plugin/__init__.py", run_name="plugin")["register"](events)  # the package under another name
print(json.dumps([first, counts()]))
"""


def test_loading_the_plugin_twice_registers_each_listener_once():
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    first, again = json.loads(out.stdout.strip().splitlines()[-1])
    assert first == again
    # lab.plugin.runs and lab.plugin.exporter both listen at init; the other modules may add more.
    assert first["init"] >= 2 and first["test_start"] >= 1 and first["reset_stats"] >= 1


def test_a_bucket_locust_rounding_never_hits_is_refused_with_the_fix():
    out = subprocess.run(
        locust_command(["tests/integration/exporter_locustfile.py"], "--headless", "--exporter-buckets", "0.05,0.125,1"),
        cwd=REPO, env=locust_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "--exporter-buckets: bucket 0.125s" in out.stderr and "multiples of 10 ms below 1s" in out.stderr
