"""`lab run SCENARIO`: start a scenario on the running stack through the Locust master's HTTP API,
show its progress until it ends, then print the SLO verdict (and the capacity found) the master
serves for the ended run (`GET /lab/run`): only HTTP, so the master may be on another machine.
Exit 0 when every objective passed, 1 when one failed, 130 after Ctrl-C (the test is stopped first)."""

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from lab.core import slo, webauth
from lab.core.config import Lab
from lab.core.errors import LabError
from lab.core.limits import capacity_sentence
from lab.core.scenarios import SCENARIOS, parse_overrides, shape_class_name
from lab.core.slo import Verdict
from lab.core.yamlconf import ConfigError

POLL_SECONDS = 2.0
START_TIMEOUT_SECONDS = 30.0  # the master starts a run within a tick of the shape (1 s)
STOP_TIMEOUT_SECONDS = 60.0  # Ctrl-C: how long to keep pressing Stop


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a scenario on the stack and show its progress and SLO verdict",
        description="Start a scenario on the Locust master, follow it until it ends and print the SLO "
        "verdict. Parameters come from locust/scenarios.yaml; the options override them for this run. "
        "Exit status: 0 every objective passed, 1 an objective failed, 2 bad input, 130 interrupted.",
    )
    parser.add_argument("scenario", metavar="SCENARIO", help=f"one of: {', '.join(SCENARIOS)}")
    parser.add_argument("--users", type=int, help="the scenario's user count (its peak or maximum)")
    parser.add_argument("--duration", help="the scenario's duration (e.g. 90s, 10m, 2h)")
    parser.add_argument("--host", help="the target's base URL (default: the master's, TARGET_HOST)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other scenario parameter, e.g. --set step_duration=30s (repeatable)",
    )
    parser.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="OBJECTIVE=THRESHOLD",
        help="an SLO threshold for this run only, e.g. --slo catalog-p95=100ms (repeatable)",
    )
    parser.set_defaults(func=run)


def overrides(args) -> str:
    """The --scenario-params value for the master, validated here so mistakes fail before starting."""
    if args.scenario not in SCENARIOS:
        raise LabError(f"unknown scenario {args.scenario!r}: valid scenarios are {', '.join(SCENARIOS)}")
    items = list(args.set)
    if args.users is not None:
        items.append(f"users={args.users}")
    if args.duration is not None:
        items.append(f"duration={args.duration}")
    if any("," in item for item in items):
        raise LabError("a scenario parameter value cannot contain ',': pass one KEY=VALUE per --set")
    text = ",".join(items)
    try:
        parse_overrides(args.scenario, text)
    except ConfigError as exc:
        raise LabError(f"{exc}; see locust/scenarios.yaml") from None
    return text


def slo_overrides(args) -> str:
    """The --slo-overrides value for the master, checked against the SLO file the lab mounts."""
    if any("," in item for item in args.slo):
        raise LabError("an SLO threshold cannot contain ',': pass one OBJECTIVE=THRESHOLD per --slo")
    text = ",".join(args.slo)
    home = Path(os.environ.get("LAB_HOME") or ".")
    path = Path(os.environ.get("LAB_SLO_FILE") or home / "locust" / "slo.yaml")
    if text and path.is_file():
        try:
            slo.with_overrides(slo.load(path), text)
        except ConfigError as exc:
            raise LabError(f"{exc}; see {path}") from None
    return text


def master_url() -> str:
    """The master's web UI URL: LOCUST_URL, else the lab's settings."""
    url = os.environ.get("LOCUST_URL")
    if url is None:
        url = Lab.from_environment().url("LOCUST_WEB_PORT", "8089")
    return url.rstrip("/")


def client_auth(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """The credentials a client of the master sends: from the environment, else from the lab's .env."""
    environ = os.environ if environ is None else environ
    if webauth.PASSWORD_ENV in environ:
        return webauth.credentials(environ)
    try:
        return webauth.credentials(Lab.from_environment(environ).settings())
    except LabError:
        return None  # not in a lab checkout (LOCUST_URL pointing elsewhere): no credentials to send


class Master:
    """The few calls `lab run` makes to the Locust master's web UI."""

    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()
        self.session.auth = client_auth()  # None unless LOCUST_WEB_PASSWORD is set

    def call(self, method: str, path: str, **kwargs):
        try:
            response = self.session.request(method, self.url + path, timeout=10, **kwargs)
        except requests.RequestException as exc:
            raise LabError(
                f"the Locust master at {self.url} is not reachable ({type(exc).__name__}): "
                "start the lab with `lab up`, or set LOCUST_URL"
            ) from None
        if response.status_code == 401:
            raise LabError(
                f"the Locust master at {self.url} asks for a password: "
                "set LOCUST_WEB_USER and LOCUST_WEB_PASSWORD as in the lab's .env"
            )
        if response.status_code == 403:  # lab.plugin.webguard: the Host in LOCUST_URL is not one it serves
            reason = (
                response.json().get("message") if "json" in response.headers.get("content-type", "") else ""
            )
            raise LabError(f"the Locust master at {self.url} refused the request: {reason or 'HTTP 403'}")
        return response

    def stats(self) -> dict:
        response = self.call("GET", "/stats/requests")
        if response.status_code != 200:
            raise LabError(
                f"{self.url}/stats/requests answered HTTP {response.status_code}: is it a Locust master?"
            )
        return self.body(response)

    def run(self, run_id: str | None = None) -> dict | None:
        """The master's current run (None before the first), or the run `run_id` if it still knows it."""
        response = self.call("GET", "/lab/run", params={"run_id": run_id} if run_id else None)
        if response.status_code == 404:
            body = response.json() if "json" in response.headers.get("content-type", "") else {}
            if "error" in body:
                return None  # no run yet
            raise LabError(f"{self.url} has no /lab/run: the master runs without the lab's Locust plugin")
        if response.status_code != 200:
            raise LabError(
                f"{self.url}/lab/run answered HTTP {response.status_code}: see `lab logs locust-master`"
            )
        return self.body(response)

    def body(self, response) -> dict:
        """The JSON object a master answers; anything else (an HTML page, a proxy's reply) is one line."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise LabError(
                f"{response.url} answered HTTP {response.status_code} without a JSON object: "
                "is LOCUST_URL the Locust master's web UI?"
            )
        return body

    def swarm(self, form: dict) -> None:
        response = self.call("POST", "/swarm", data=form)
        if response.status_code != 200:
            raise LabError(
                f"the master refused to start {form['shape_class']} (HTTP {response.status_code}): it must "
                "load the lab's plugin, find a scenarios.yaml and run with --class-picker"
            )
        body = self.body(response)
        if not body.get("success"):
            raise LabError(f"the master did not start the test: {body.get('message')}")

    def stop(self) -> None:
        self.call("POST", "/stop")

    def stop_until_stopped(self) -> None:
        """Press Stop until the runner is stopped: a worker that (re)joins while the master stops
        can leave it running with no users, and one Stop is then not enough."""
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self.stop()
            time.sleep(1.0)
            if self.stats().get("state") in ("stopped", "ready"):
                return
        raise LabError(
            f"the test on {self.url} did not stop within {STOP_TIMEOUT_SECONDS:.0f} s: stop it in the web UI"
        )


def run(args) -> int:
    params = overrides(args)
    thresholds = slo_overrides(args)
    url = master_url()
    master = Master(url)
    state = master.stats().get("state")
    if state in ("spawning", "running"):
        raise LabError(f"a test is already running on {url}: wait for it or stop it in the web UI")
    previous = master.run()
    # Both overrides are always sent: the master keeps form values for later runs.
    form = {
        "shape_class": shape_class_name(args.scenario),
        "scenario_params": params,
        "slo_overrides": thresholds,
    }
    if args.host:
        form["host"] = args.host
    master.swarm(form)
    try:
        current = wait_for_new_run(master, previous)
        print(f"run {current['run_id']}: {args.scenario} on {current['host']}; Ctrl-C stops it")
        ended = follow(master, current)
    except KeyboardInterrupt:
        master.stop_until_stopped()
        print("\nlab: stopped the test", file=sys.stderr)
        return 130
    return verdict(ended)


def wait_for_new_run(master: Master, previous: dict | None) -> dict:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        current = master.run()
        if current and (previous is None or current["run_id"] != previous["run_id"]):
            return current
        time.sleep(0.5)
    master.stop()
    raise LabError(
        f"the master accepted the scenario but no run started within {START_TIMEOUT_SECONDS:.0f} s: "
        "see `lab logs locust-master` (a bad scenarios.yaml or override stops it)"
    )


def progress_line(run: dict, stats: dict) -> str:
    elapsed = time.time() - run["started_at"]
    p95 = (stats.get("current_response_time_percentiles") or {}).get("response_time_percentile_0.95")
    p95_text = f"{p95:.0f} ms" if p95 is not None else "-"
    return (
        f"{int(elapsed // 60):02d}:{int(elapsed % 60):02d}  stage {run.get('stage') or '-':<9} "
        f"users {stats.get('user_count', 0):>5}  {stats.get('current_rps', 0.0):7.1f} req/s  "
        f"p95 {p95_text:>8}  failures {100 * stats.get('fail_ratio', 0.0):5.2f}%"
    )


def follow(master: Master, run: dict) -> dict:
    """Print progress until the run has ended; returns what the master serves for the ended run."""
    tty = sys.stdout.isatty()
    while True:
        stats = master.stats()
        current = master.run() or run
        if current["run_id"] != run["run_id"]:
            # The stats were reset: the run ended with its stats until then and a new one started.
            current = master.run(run["run_id"])
            if current is None:
                raise LabError(
                    f"the master no longer knows run {run['run_id']}: see `lab runs` on its machine"
                )
        line = progress_line(current, stats)
        print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)
        # "ended": the master has judged the run on its final figures and written its results.
        if current.get("state") == "ended":
            if tty:
                print()
            return current
        time.sleep(POLL_SECONDS)


def rate_capacity_line(capacity: dict) -> str:
    """The rate search's capacity (arrivals/s offered, requests/s achieved) and why it stopped."""
    steps = capacity.get("steps", [])
    last = steps[-1] if steps else {}
    why = capacity.get("reason")
    if last and not last.get("passed"):
        if last.get("short") == "dropped":
            why += (
                f": at {last['offered_rate']:g} arrivals/s it dropped {last['dropped']} of {last['arrivals']}"
            )
        elif last.get("short") == "shortfall":
            why += f": at {last['offered_rate']:g} arrivals/s it started {last['achieved_rate'] or 0:.1f}/s"
        else:
            why += f": at {last['offered_rate']:g} arrivals/s it breached {', '.join(last['breached'])}"
    if capacity.get("rate") is None:
        return f"capacity: none, even the first step fell short or breached the SLOs ({why})"
    return (
        f"capacity: {capacity['rate']:g} arrivals/s offered, {capacity['requests_per_second']:.1f} requests/s "
        f"achieved (search ended by {why}, {len(steps)} steps)"
    )


def verdict(run: dict) -> int:
    """Print the run's SLO verdict and capacity as the master judged them; 1 if an objective failed."""
    outcome = run.get("outcome")
    if outcome is None:
        raise LabError(
            "the master ended the run without a verdict: does it load the lab's plugin with --slo-file?"
        )
    if "error" in outcome:
        raise LabError(f"the master could not judge the SLOs: {outcome['error']}")
    for objective in outcome["objectives"]:
        print("  " + Verdict(**objective).describe())
    capacity = outcome.get("capacity")
    if capacity is not None and "rate" in capacity:
        print(rate_capacity_line(capacity))
    elif capacity is not None:
        print(f"capacity search: {len(capacity.get('steps', []))} steps, ended by {capacity.get('reason')}")
        print(capacity_sentence(capacity))
    print(f"results: {run['results_dir']} (on the master)")
    if outcome.get("aborted"):
        print(f"lab: run aborted: {outcome['aborted']['reason']}", file=sys.stderr)
    if outcome["failed"]:
        print(f"lab: SLO failed: {', '.join(outcome['failed'])}", file=sys.stderr)
        return 1
    print("SLOs: all objectives passed")
    return 0
