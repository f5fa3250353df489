"""`lab up`, `lab down`, `lab status`, `lab logs`: the compose stack's life, through Compose v2 and the Docker SDK."""

import argparse
import os
import subprocess
import sys

import requests

from lab.cli import preflight, targets
from lab.core.config import Lab, parse_env_file
from lab.core.conventions import TARGET_JOB
from lab.core.errors import LabError
from lab.core.files import check_writable

WAIT_SECONDS = 300


def register(subparsers) -> None:
    up = subparsers.add_parser("up", help="bring the stack up and wait until it is healthy")
    up.add_argument("--workers", type=_positive, help="number of Locust workers (default LOCUST_WORKERS, 2)")
    up.add_argument("--build", action="store_true", help="build the api and locust images first")
    up.add_argument("--offline", action="store_true", help="use the offline images (same as LAB_OFFLINE=1)")
    up.set_defaults(func=up_command)

    down = subparsers.add_parser("down", help="stop and remove the stack's containers (data volumes stay)")
    down.add_argument(
        "--volumes", action="store_true", help="also delete Prometheus, Grafana and Postgres data"
    )
    down.set_defaults(func=down_command)

    status = subparsers.add_parser("status", help="each service's state and health, and Prometheus's targets")
    status.set_defaults(func=status_command)

    logs = subparsers.add_parser("logs", help="the stack's logs")
    logs.add_argument("service", nargs="?", help="one service, e.g. api or locust-master")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail", default="200", help="lines per container (default 200)")
    logs.set_defaults(func=logs_command)


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return int(value)


def up_command(args) -> int:
    if args.offline:
        os.environ["LAB_OFFLINE"] = "1"
    lab = Lab.from_environment()
    lab.settings()  # a malformed .env is refused before anything starts
    client = preflight.docker_client()
    preflight.compose_v2()
    if lab.ensure_env_file():
        print(f"wrote {lab.env_file} with generated secrets (keep it private; it is git-ignored)")
    # The master writes every run there: a folder it cannot write would lose the runs' results.
    check_writable(lab.results_dir(), fix=f"set LAB_RESULTS_DIR in {lab.env_file}")
    endpoints = targets.parse(lab.setting(targets.SETTING, ""))  # refused now, not after the images
    preflight.ports_free(lab, client)
    lab = choose_images(lab, client)
    images = preflight.stack_images(lab.compose_command())
    preflight.require_images(client, images, lab.compose_command, lab.offline, build=args.build)
    _warn_if_exposed(lab)
    _expose_master(lab)
    targets.write(lab, endpoints)
    was_running = bool(_containers(lab, client))
    command = lab.compose_command(
        "up", "--detach", "--wait", "--wait-timeout", str(WAIT_SECONDS), "--remove-orphans"
    )
    if args.workers:
        command += ["--scale", f"locust-worker={args.workers}"]
    if subprocess.run(command).returncode != 0:
        unhealthy = not_ready(_containers(lab, client))
        if not was_running:
            subprocess.run(lab.compose_command("down", "--remove-orphans"), capture_output=True)
        raise LabError(
            f"the stack did not become healthy (services: {', '.join(unhealthy) or 'see above'}): "
            "check `lab logs SERVICE`, then run `lab up` again"
            + (" (the half-started stack was removed)" if not was_running else "")
        )
    _print_urls(lab, endpoints)
    return 0


def down_command(args) -> int:
    lab = Lab.from_environment()
    preflight.compose_v2()
    # Every profile, so that containers started under any of them go too.
    command = lab.compose_command("--profile", "*", "down", "--remove-orphans")
    if args.volumes:
        command.append("--volumes")
    returncode = subprocess.run(command).returncode
    if returncode == 0:
        targets.remove(lab)
    return returncode


def status_command(args) -> int:
    lab = Lab.from_environment()
    client = preflight.docker_client()
    containers = _containers(lab, client)
    if not containers:
        print(f"the lab ({lab.project}) is not running: start it with `lab up`")
        return 1
    ok = True
    print(f"{'SERVICE':<20} {'CONTAINER':<36} HEALTH")
    for container in sorted(containers, key=lambda c: c.name):
        health = _health(container)
        ok &= health in ("healthy", "running", "done")
        print(f"{container.labels.get('com.docker.compose.service', '?'):<20} {container.name:<36} {health}")
    scraped = _prometheus_targets(lab)
    if scraped is None:
        print("\nPrometheus: not reachable at " + lab.url("PROMETHEUS_PORT", "9090"))
        return 1
    # A job whose service is not started (the demo profile off, against your own API) has nothing to scrape.
    started = {c.labels.get("com.docker.compose.service") for c in containers} | {"localhost"}
    print(f"\n{'PROMETHEUS JOB':<20} {'TARGET':<36} HEALTH")
    for target in scraped:
        # TARGET_METRICS names the user's own endpoints: they are judged wherever they run.
        own = target["labels"]["job"] == TARGET_JOB
        if not own and target["labels"]["instance"].split(":")[0] not in started:
            health = "not started"
        else:
            ok &= target["health"] == "up"
            health = target["health"] + (f" ({target['lastError']})" if target.get("lastError") else "")
        print(f"{target['labels']['job']:<20} {target['scrapeUrl']:<36} {health}")
    return 0 if ok else 1


def logs_command(args) -> int:
    lab = Lab.from_environment()
    command = lab.compose_command("--profile", "*", "logs", "--tail", args.tail)
    if args.follow:
        command.append("--follow")
    if args.service:
        command.append(args.service)
    return subprocess.run(command).returncode


def _containers(lab: Lab, client) -> list:
    return client.containers.list(all=True, filters={"label": f"com.docker.compose.project={lab.project}"})


def not_ready(containers) -> list[str]:
    """The compose services of these containers that are neither healthy, running nor a finished one-shot."""
    return sorted(
        {
            c.labels.get("com.docker.compose.service", c.name)
            for c in containers
            if _health(c) not in ("healthy", "running", "done")
        }
    )


def _health(container) -> str:
    state = container.attrs["State"]
    if state["Status"] == "exited" and state["ExitCode"] == 0 and not _restarts(container):
        return "done"  # a one-shot step (postgres-roles) that did its work
    return state.get("Health", {}).get("Status") or state["Status"]


def _restarts(container) -> bool:
    return container.attrs["HostConfig"]["RestartPolicy"]["Name"] not in ("", "no")


def choose_images(lab: Lab, client) -> Lab:
    """Remember the offline choice in .env, or make it when only the offline images can run here.

    Returns the Lab to use (LAB_OFFLINE set in this process when the choice was made here).
    """
    settings = lab.settings()
    if lab.offline:
        if parse_env_file(lab.env_file).get("LAB_OFFLINE") != "1":
            lab.remember("LAB_OFFLINE", "1")
            print(
                f"remembered LAB_OFFLINE=1 in {lab.env_file}: later `lab up` runs use the offline images too "
                "(set LAB_OFFLINE=0 there to go back)"
            )
        return lab
    if "LAB_OFFLINE" in settings:
        return lab  # the user chose the online images
    online = preflight.stack_images(lab.compose_command())
    if not preflight.unobtainable(client, online):
        return lab
    offline_lab = Lab.from_environment({**os.environ, "LAB_OFFLINE": "1"})
    offline = preflight.stack_images(offline_lab.compose_command())
    if preflight.unobtainable(client, offline) or any(e["state"] != "present" for e in offline.values()):
        return lab  # neither stack can start as is: require_images names the image and the fix
    os.environ["LAB_OFFLINE"] = "1"
    lab.remember("LAB_OFFLINE", "1")
    print(
        f"using the offline images: the online ones are not here and cannot be pulled; remembered "
        f"LAB_OFFLINE=1 in {lab.env_file} (set LAB_OFFLINE=0 there to choose the online images)"
    )
    return Lab.from_environment()


def _warn_if_exposed(lab: Lab) -> None:
    bind = lab.setting("LAB_BIND", "127.0.0.1")
    if bind.startswith("127.") or bind in ("localhost", "::1"):
        return
    print(
        f"warning: LAB_BIND={bind} publishes Grafana, Prometheus and the Locust UI beyond this machine. "
        "Prometheus has no login: keep this to a trusted network.",
        file=sys.stderr,
    )
    if not lab.setting("LOCUST_WEB_PASSWORD", ""):
        print(
            f"warning: the Locust UI on {bind} can start and stop load with no login: "
            f"set LOCUST_WEB_PASSWORD in {lab.env_file}",
            file=sys.stderr,
        )


def _expose_master(lab: Lab) -> None:
    """LAB_EXPOSE_MASTER=1 publishes the worker port on LAB_MASTER_BIND, which must be one given address."""
    if not lab.expose_master:
        return
    bind = lab.setting("LAB_MASTER_BIND", "")
    port = lab.setting("LOCUST_MASTER_PORT", "5557")
    if not bind or bind in ("0.0.0.0", "::", "[::]"):
        raise LabError(
            f"LAB_EXPOSE_MASTER=1 needs LAB_MASTER_BIND set to this machine's private address that the "
            f"worker machines reach (e.g. 10.0.0.5), not {bind or 'nothing'}: set it in {lab.env_file}"
        )
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise LabError(f"LOCUST_MASTER_PORT={port!r} is not a port number: set it in {lab.env_file}")
    print(
        f"warning: LAB_EXPOSE_MASTER=1 publishes the Locust master's worker port on {bind}:{port}. "
        "It has no authentication: whoever reaches it can join as a worker and read the locustfile. "
        "Keep it on a private network.",
        file=sys.stderr,
    )


def _prometheus_targets(lab: Lab) -> list | None:
    try:
        response = requests.get(lab.url("PROMETHEUS_PORT", "9090") + "/api/v1/targets", timeout=5)
        response.raise_for_status()
        active = response.json()["data"]["activeTargets"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None  # down, or not Prometheus: said as "not reachable"
    return sorted(active, key=lambda t: t["labels"]["job"])


def _print_urls(lab: Lab, endpoints: list[dict]) -> None:
    profiles = lab.setting("COMPOSE_PROFILES", "")
    print("\nThe lab is up:")
    if "grafana" in profiles.split(","):
        print(
            f"  Grafana     {lab.url('GRAFANA_PORT', '3000')}  (user admin, password GRAFANA_ADMIN_PASSWORD in {lab.env_file})"
        )
    else:
        print(
            "  Grafana     not started (the grafana profile is off; the offline stack has no Grafana image)"
        )
    print(f"  Locust UI   {lab.url('LOCUST_WEB_PORT', '8089')}")
    print(f"  Prometheus  {lab.url('PROMETHEUS_PORT', '9090')}")
    if endpoints:
        where = ", ".join(
            g["labels"]["__scheme__"] + "://" + g["targets"][0] + g["labels"]["__metrics_path__"]
            for g in endpoints
        )
        print(
            f"  Your API's metrics ({targets.SETTING}, job {TARGET_JOB}): {where} (`lab status` says if they answer)"
        )
    print("Run a scenario with `lab run baseline`; see the state with `lab status`.")
