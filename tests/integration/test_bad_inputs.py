"""Every `lab` verb against bad inputs and bad environments: one line on stderr naming the cause,
a non-zero exit, no traceback, nothing half-written.

The lab runs as the user runs it (the venv's `lab` script, a subprocess). The bad environments are
real: a missing path, a path under a file or under /proc, a read-only mount and a full 64 KiB tmpfs
(mounted here, so the test needs root), a Locust master and a Prometheus that answer HTTP 500 or an
HTML page (small local HTTP servers), a Prometheus that does not answer at all, images that are neither
on the engine nor pullable (the verbs that start containers need a Docker engine: they stop before
Compose starts anything, so nothing runs).
"""

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.test_lab_cli import engine_reachable
from tests.support.local_services import free_port
from tests.unit.test_report import FAILURES_CSV, STATS_CSV

ROOT = Path(__file__).resolve().parents[2]
LAB = Path(sys.executable).parent / "lab"
RUN_ID = "20260101T000000Z-baseline"
BARE_RUN_ID = "20260101T000100Z-baseline"  # run.json only: its master died before any checkpoint
RECORD = {"run_id": RUN_ID, "scenario": "baseline", "host": "http://api:8000", "start": 1767225600.0,
          "end": 1767225660.0, "partial": False}  # fmt: skip


class Garbage(BaseHTTPRequestHandler):
    """Answers every request with `status` and an HTML page, as a proxy, a login page or a crashed app does."""

    status = 500

    def do_GET(self):
        body = b"<html><body><h1>Something went wrong</h1></body></html>"
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *_args):
        pass


class Html(Garbage):
    status = 200


def serve(handler) -> tuple[str, ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )


def write_run(results: Path, run_id: str = RUN_ID, csvs: bool = True) -> None:
    folder = results / run_id
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({**RECORD, "run_id": run_id}))
    if csvs:  # as the master writes them at the run's end
        (folder / "locust_stats.csv").write_text(STATS_CSV)
        (folder / "locust_failures.csv").write_text(FAILURES_CSV)


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """The paths and servers the cases name, as {placeholder: value}."""
    tmp = tmp_path_factory.mktemp("bad-inputs")
    write_run(tmp / "results")
    write_run(tmp / "results", BARE_RUN_ID, csvs=False)
    (tmp / "garbled" / RUN_ID).mkdir(parents=True)
    (tmp / "garbled" / RUN_ID / "run.json").write_text("<html>not a run record</html>\n")
    (tmp / "afile").write_text("not a folder\n")
    (tmp / "bad.env").write_text("LAB_BIND 127.0.0.1\n")
    (tmp / "good.env").write_text("LAB_BIND=127.0.0.1\n")
    (tmp / "rules").mkdir()
    values = {"tmp": str(tmp), "results": str(tmp / "results"), "file": str(tmp / "afile")}
    servers = []
    for name, handler in (("garbage500", Garbage), ("html", Html)):
        url, server = serve(handler)
        values[name] = url
        servers.append(server)
    values["down"] = f"http://127.0.0.1:{free_port()}"
    mounted = []
    ro, full = tmp / "ro", tmp / "full"
    try:
        # A read-only folder holding a run; a full one holding a run (a filler takes the rest of its 64 KiB).
        if mount_tmpfs(ro, "size=64k"):
            mounted.append(ro)
            write_run(ro)
            values["ro"] = str(ro) if mount_tmpfs(ro, "remount,ro") else None
        if mount_tmpfs(full, "size=64k"):
            mounted.append(full)
            write_run(full)
            fd = os.open(full / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                while os.write(fd, b"\0" * 4096):
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)
            values["full"] = str(full)
        yield values
    finally:
        for server in servers:
            server.shutdown()
        for path in mounted:
            subprocess.run(["umount", str(path)], capture_output=True)


@dataclass
class Case:
    id: str
    argv: list[str]
    cause: list[str]  # fragments of the one line
    env: dict = field(default_factory=dict)
    engine: bool = False  # the verb needs a Docker engine before it gets to the bad input

    def param(self):
        marks = []
        if self.engine:
            marks.append(pytest.mark.skipif(not engine_reachable(), reason="needs a reachable Docker engine"))
        return pytest.param(self, id=self.id, marks=marks)


NO_SPACE = "No space left on device"
READ_ONLY = "Read-only file system"
PROM_DOWN = "Prometheus is unreachable at {down}"
NOT_JSON = "without JSON: is --prometheus pointing at Prometheus?"
RUN = ["{run}"]
# `lab dashboards` also writes the SLO alert rules: into a scratch folder, from the lab's SLO file.
RULES = ["--rules", "{tmp}/rules"]
SLO_FILE = ["--slo-file", str(ROOT / "locust" / "slo.yaml")]
# Published ports that nothing holds, so that `lab up` gets past them to the bad input.
UP_PORTS = {"GRAFANA_PORT": "{port1}", "LOCUST_WEB_PORT": "{port2}", "PROMETHEUS_PORT": "{port3}"}

CASES = [
    # lab dashboards --out
    Case("dashboards-out-missing", ["dashboards", "--out", "/proc/nope/dashboards", *RULES, *SLO_FILE],
         ["/proc/nope is not a folder", "pass --out DIR"]),
    Case("dashboards-out-under-a-file", ["dashboards", "--out", "{file}/dashboards", *RULES, *SLO_FILE],
         ["{file} is not a folder", "pass --out DIR"]),
    Case("dashboards-out-under-proc", ["dashboards", "--out", "/proc/self/nope", *RULES, *SLO_FILE],
         ["cannot write into /proc/self/nope", "pass --out DIR"]),
    Case("dashboards-out-read-only", ["dashboards", "--out", "{ro}/dashboards", *RULES, *SLO_FILE], [READ_ONLY, "pass --out DIR"]),
    Case("dashboards-out-full", ["dashboards", "--out", "{full}/dashboards", *RULES, *SLO_FILE], [NO_SPACE, "free some space"]),
    Case("dashboards-rules-missing", ["dashboards", "--out", "{tmp}/dash", "--rules", "/nonexistent/rules", *SLO_FILE],
         ["/nonexistent/rules is not a folder", "pass --rules DIR"]),
    Case("dashboards-rules-read-only", ["dashboards", "--out", "{tmp}/dash", "--rules", "{ro}", *SLO_FILE],
         [f"cannot write into {{ro}} ({READ_ONLY})", "pass --rules DIR"]),
    Case("dashboards-slo-file-missing", ["dashboards", "--out", "{tmp}/dash", *RULES, "--slo-file", "/nonexistent/slo.yaml"],
         ["/nonexistent/slo.yaml does not exist", "pass --slo-file FILE"]),
    # lab report [RUN_ID] --results --prometheus --slo
    Case("report-unknown-run", ["report", "20000101T000000Z-nope", "--results", "{results}"],
         ["unknown run id '20000101T000000Z-nope'"]),
    Case("report-results-missing", ["report", "--results", "/nonexistent/results"],
         ["no runs in /nonexistent/results/", "--results DIR"]),
    Case("report-results-is-a-file", ["report", "--results", "{file}"],
         ["no runs in {file}/"]),
    Case("report-results-read-only", ["report", *RUN, "--results", "{ro}"],
         [f"cannot write into {{ro}}/{RUN_ID} ({READ_ONLY})"]),
    Case("report-results-full", ["report", *RUN, "--results", "{full}"],
         [f"cannot write into {{full}}/{RUN_ID} ({NO_SPACE})"]),
    Case("report-slo-missing", ["report", *RUN, "--results", "{results}", "--slo", "/nonexistent/slo.yaml"],
         ["no SLO file /nonexistent/slo.yaml"]),
    Case("report-slo-is-a-folder", ["report", *RUN, "--results", "{results}", "--slo", "{tmp}"],
         ["no SLO file {tmp}"]),
    Case("report-run-without-figures", ["report", BARE_RUN_ID, "--results", "{results}"],
         [f"cannot read {{results}}/{BARE_RUN_ID}/locust_stats.csv"]),
    # lab compare RUN [RUN] --results --json --save-baseline
    Case("compare-unknown-runs", ["compare", "20000101T000000Z-a", "20000101T000000Z-b", "--results", "{results}"], ["unknown run id '20000101T000000Z-a'"]),
    Case("compare-results-missing", ["compare", *RUN, *RUN, "--results", "/nonexistent/results"], ["unknown run id", "/nonexistent/results"]),
    Case("compare-json-missing", ["compare", *RUN, *RUN, "--results", "{results}", "--json", "/proc/nope/c.json"], ["cannot write into /proc/nope", "pass --json FILE"]),
    Case("compare-json-read-only", ["compare", *RUN, *RUN, "--results", "{results}", "--json", "{ro}/c.json"], [READ_ONLY, "pass --json FILE"]),
    Case("compare-results-full", ["compare", *RUN, *RUN, "--results", "{full}"],
         [NO_SPACE]),
    Case("compare-baseline-read-only", ["compare", "--save-baseline", *RUN, "--results", "{ro}"], [f"cannot write into {{ro}} ({READ_ONLY})"]),
    Case("compare-no-baseline", ["compare", *RUN, "--results", "{results}"],
         ["no baseline at {results}/baseline.json"]),
    Case("compare-run-without-figures", ["compare", *RUN, BARE_RUN_ID, "--results", "{results}"],
         [f"cannot read {{results}}/{BARE_RUN_ID}/locust_stats.csv"]),
    # lab runs --results
    Case("runs-garbled-record", ["runs", "--results", "{tmp}/garbled"],
         [f"{{tmp}}/garbled/{RUN_ID}/run.json is not a valid run record"]),
    # lab run SCENARIO (the master at LOCUST_URL, results in LAB_RESULTS_DIR)
    Case("run-unknown-scenario", ["run", "nope"], ["unknown scenario 'nope'"], {"LOCUST_URL": "{down}"}),
    Case("run-bad-parameter", ["run", "baseline", "--set", "nope=1"], ["nope", "scenarios.yaml"],
         {"LOCUST_URL": "{down}"}),
    Case("run-master-down", ["run", "baseline"], ["the Locust master at {down} is not reachable"],
         {"LOCUST_URL": "{down}"}),
    Case("run-master-500", ["run", "baseline"], ["{garbage500}/stats/requests answered HTTP 500"],
         {"LOCUST_URL": "{garbage500}"}),
    Case("run-master-html", ["run", "baseline"], ["{html}/stats/requests answered HTTP 200 without a JSON object"],
         {"LOCUST_URL": "{html}"}),
    # lab up (the lab's home, .env, results folder, images)
    Case("up-home-missing", ["up"], ["no docker-compose.load-test.yml in /nonexistent"],
         {"LAB_HOME": "/nonexistent"}),
    Case("up-env-file-missing-folder", ["up"], ["cannot write /proc/nope/.env"],
         {"LAB_ENV_FILE": "/proc/nope/.env"}, engine=True),
    Case("up-env-file-read-only", ["up"], [f"cannot write {{ro}}/.env ({READ_ONLY})"],
         {"LAB_ENV_FILE": "{ro}/.env"}, engine=True),
    Case("up-results-missing-folder", ["up"], ["cannot write into /proc/nope/results", "LAB_RESULTS_DIR"],
         {"LAB_RESULTS_DIR": "/proc/nope/results"}, engine=True),
    Case("up-results-read-only", ["up"], [f"cannot write into {{ro}}/results ({READ_ONLY})", "LAB_RESULTS_DIR"],
         {"LAB_RESULTS_DIR": "{ro}/results"}, engine=True),
    Case("up-results-full", ["up"], [f"cannot write into {{full}} ({NO_SPACE})", "LAB_RESULTS_DIR"],
         {"LAB_RESULTS_DIR": "{full}"}, engine=True),
    Case("up-offline-image-missing", ["up"], ["image loadlab-offline/nope:1 is not here and cannot be pulled",
         "make images-offline"], {"LAB_OFFLINE": "1", "PROMETHEUS_IMAGE": "loadlab-offline/nope:1", **UP_PORTS},
         engine=True),
    Case("up-online-images-missing", ["up"], ["is not here and cannot be", "make images-offline",
         "--offline (LAB_OFFLINE=1)"], {"LAB_OFFLINE": "0", "LOCUST_IMAGE": "loadlab/nope:1",
         "LAB_BASE_IMAGE": "nope/base:1", **UP_PORTS}, engine=True),
    Case("up-target-metrics-bad", ["up"], ["TARGET_METRICS: 'myapp:80x/metrics' has a port that is not a number",
         "set TARGET_METRICS in .env", "host.docker.internal:8000/metrics"],
         {"TARGET_METRICS": "myapp:8000,myapp:80x/metrics", **UP_PORTS}, engine=True),
    # lab down / status / logs
    Case("down-home-missing", ["down"], ["no docker-compose.load-test.yml in /nonexistent"],
         {"LAB_HOME": "/nonexistent"}),
    Case("status-home-missing", ["status"], ["no docker-compose.load-test.yml in /nonexistent"],
         {"LAB_HOME": "/nonexistent"}),
    Case("status-no-engine", ["status"], ["no Docker engine is reachable"],
         {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}),
    Case("logs-home-missing", ["logs"], ["no docker-compose.load-test.yml in /nonexistent"],
         {"LAB_HOME": "/nonexistent"}),
    Case("logs-env-file-malformed", ["logs"], ["{tmp}/bad.env:1 is not KEY=VALUE", "fix or delete that line"],
         {"LAB_ENV_FILE": "{tmp}/bad.env"}),
    # lab workers up / down
    Case("workers-up-bad-master", ["workers", "up", "--master", "no host"], ["lab workers up: error: argument --master: 'no host' is not HOST[:PORT]"]),
    Case("workers-up-image-missing", ["workers", "up", "--master", "127.0.0.1:5557", "--count", "1"],
         ["image loadlab/nope:1 is not here and cannot be built", "nope/base:1", "make images-offline"],
         {"LOCUST_IMAGE": "loadlab/nope:1", "LAB_BASE_IMAGE": "nope/base:1", "LAB_ENV_FILE": "{tmp}/good.env"},
         engine=True),
    Case("workers-down-home-missing", ["workers", "down"], ["no docker-compose.load-test.yml in /nonexistent"],
         {"LAB_HOME": "/nonexistent"}),
]  # fmt: skip


def fill(text: str, values: dict) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def snapshot(folders: list[Path]) -> dict[Path, bytes]:
    return {
        path: path.read_bytes()
        for folder in folders
        if folder.is_dir()
        for path in folder.rglob("*")
        if path.is_file() and path.name != "filler"
    }


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_bad_input_is_one_line_naming_the_cause(case, places, tmp_path):
    values = {**places, "run": RUN_ID, "port1": str(free_port()), "port2": str(free_port()),
              "port3": str(free_port())}  # fmt: skip
    texts = [*case.argv, *case.cause, *case.env.values()]
    unset = [
        key for key in ("ro", "full") if any("{" + key + "}" in t for t in texts) and not values.get(key)
    ]
    if unset:
        pytest.skip(f"cannot mount a tmpfs for {unset} (needs root)")
    env = {
        **os.environ,
        "LAB_HOME": str(ROOT),
        "LAB_ENV_FILE": str(tmp_path / ".env"),
        "LAB_PROJECT": "loadlab-bad-inputs",
        "LAB_RESULTS_DIR": str(tmp_path / "results"),
        "LAB_OFFLINE": "0",
        "PROMETHEUS_URL": values["down"],
        **{key: fill(value, values) for key, value in case.env.items()},
    }
    watched = [Path(places[key]) for key in ("results", "ro", "full") if places.get(key)] + [tmp_path]
    before = snapshot(watched)
    result = subprocess.run(
        [str(LAB), *(fill(a, values) for a in case.argv)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in case.cause:
        assert fill(fragment, values) in lines[0], lines[0]
    after = snapshot(watched)
    # Nothing half-written: no temporary files left, no file changed, nothing new but a whole .env.
    assert not [p for p in after if p.name.endswith(".tmp")], after
    assert {p: b for p, b in after.items() if p in before} == before
    assert set(after) - set(before) <= {tmp_path / ".env"}


def test_every_verb_has_bad_cases():
    from lab.cli import build_parser

    parser = build_parser()
    verbs = set(parser._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse has no public list
    covered = {case.argv[0] for case in CASES}
    assert verbs <= covered, verbs - covered


def test_a_full_disk_leaves_the_old_file_whole(places):
    """The atomic writer on a full tmpfs: the old content stays, no temporary file stays."""
    if not places.get("full"):
        pytest.skip("cannot mount a tmpfs (needs root)")
    from lab.core.errors import LabError
    from lab.core.files import write_atomic

    run_json = Path(places["full"]) / RUN_ID / "run.json"
    old = run_json.read_bytes()
    with pytest.raises(LabError, match=f"cannot write {run_json} \\({NO_SPACE}\\): free some space"):
        write_atomic(run_json, "x" * 200_000)
    assert run_json.read_bytes() == old
    assert not list(run_json.parent.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("prometheus", "cause"),
    [("down", PROM_DOWN), ("garbage500", "answered HTTP 500 " + NOT_JSON),
     ("html", "answered HTTP 200 " + NOT_JSON)],
)  # fmt: skip
def test_report_without_a_working_prometheus_is_one_warning_and_a_whole_report(
    places, prometheus, cause, tmp_path
):
    """The client figures come from the run's own files: a Prometheus that is down or answers garbage
    costs the time series only, said in one line."""
    results = tmp_path / "results"
    write_run(results)
    result = subprocess.run(
        [str(LAB), "report", RUN_ID, "--results", str(results), "--prometheus", places[prometheus]],
        env={**os.environ, "LAB_HOME": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: warning: "), result.stderr
    assert fill(cause, places) in lines[0] and "writing the report without time series" in lines[0]
    report = json.loads((results / RUN_ID / "report.json").read_text())
    assert report["summary"]["requests"] == 120
    assert (results / RUN_ID / "report.html").read_text().rstrip().endswith("</html>")
    assert not list((results / RUN_ID).glob(".*.tmp"))
