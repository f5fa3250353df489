"""process-exporter's groups (compose/process-exporter/config.yml): one per compose service, under the
names the dashboards and the capacity search query, matching the command lines the compose file starts and
none of the Locust processes the tests and benchmarks start on the host.

The rules are applied here as process-exporter applies them (its config package: the first rule whose
`comm`, `exe` and every `cmdline` regular expression all match names the process). The command lines are
the compose file's commands behind the argv the images' entrypoints put before them; the running stack's
real ones are checked by tests/e2e/test_stack.py (every busy group has CPU).
"""

import re
from pathlib import Path

import pytest
import yaml

from lab import dashboards
from tests.support.locust import PLUGIN, LocustProcesses, locust_command

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "compose" / "process-exporter" / "config.yml"
GROUPS = (
    "api",
    "postgres",
    "redis",
    "locust-master",
    "locust-worker",
    "prometheus",
    "grafana",
    "postgres-exporter",
    "redis-exporter",
    "node-exporter",
    "process-exporter",
)
_GROUPNAME = re.compile(r'groupname(=~?)"([^"]*)"')


def rules() -> list[dict]:
    return yaml.safe_load(CONFIG.read_text())["process_names"]


def group_of(comm: str, argv: list[str]) -> str | None:
    """The group process-exporter puts a process in (None: no group, so not exported)."""
    cmdline = " ".join(argv)
    for rule in rules():
        if "comm" in rule and comm not in rule["comm"]:
            continue
        if "exe" in rule and Path(argv[0]).name not in rule["exe"]:
            continue
        if all(re.search(pattern, cmdline) for pattern in rule.get("cmdline", ())):
            return rule["name"]
    return None


def compose_command(service: str, file: str = "docker-compose.load-test.yml") -> list[str]:
    return yaml.safe_load((ROOT / file).read_text())["services"][service]["command"]


# What each service's main process looks like on the host (`docker top`): comm (15 characters at most) and
# argv, the image's entrypoint before the compose file's command.
VENV = ["/opt/venv/bin/python3"]
STACK = {
    "api": (
        "uvicorn",
        [*VENV, "/opt/venv/bin/uvicorn", "demoapi.main:app", "--host", "0.0.0.0", "--port", "8000"],
    ),
    "postgres": ("postgres", compose_command("postgres")),
    # The offline image's entrypoint adds its data directory and listen address before the command's options.
    "postgres offline": (
        "postgres",
        [
            "postgres",
            "-D",
            "/var/lib/postgresql/data",
            "-c",
            "listen_addresses=*",
            *compose_command("postgres")[1:],
        ],
    ),
    "redis": ("redis-server", compose_command("redis")),
    "redis titled": ("redis-server", ["redis-server *:6379"]),  # Redis rewrites its command line as it starts
    "locust-master": ("locust", [*VENV, "/opt/venv/bin/locust", *compose_command("locust-master")]),
    "locust-worker": ("locust", [*VENV, "/opt/venv/bin/locust", *compose_command("locust-worker")]),
    "prometheus": ("prometheus", ["/bin/prometheus", *compose_command("prometheus")]),
    "grafana": ("grafana", ["grafana", "server", "--homepath=/usr/share/grafana"]),
    "postgres-exporter": ("postgres_export", ["/bin/postgres_exporter"]),
    "redis-exporter": ("redis_exporter", ["/redis_exporter"]),
    "node-exporter": ("node_exporter", ["/bin/node_exporter", *compose_command("node-exporter")]),
    "process-exporter": ("process-exporte", ["/bin/process-exporter", *compose_command("process-exporter")]),
}


def test_the_groups_are_the_compose_services_by_name():
    assert [rule["name"] for rule in rules()] == list(GROUPS)
    services = yaml.safe_load((ROOT / "docker-compose.load-test.yml").read_text())["services"]
    assert set(GROUPS) <= set(services)


@pytest.mark.parametrize("process", sorted(STACK))
def test_each_service_of_the_stack_lands_in_its_group(process):
    comm, argv = STACK[process]
    assert group_of(comm, argv) == process.split()[0]


def test_locust_started_on_the_host_is_in_no_group(tmp_path):
    # As the tests' and benchmarks' harness starts them (tests/support/locust.py), and a machine's workers
    # for another master (compose/workers.yml, `lab workers up`).
    locust = LocustProcesses(tmp_path, ["locustfile.py", PLUGIN], workers=1, web=True, exporter=True)
    worker = locust_command(
        locust.locustfiles, "--worker", "--master-host", "127.0.0.1", "--master-port", "5557"
    )
    remote = [
        "/opt/venv/bin/python3",
        "/opt/venv/bin/locust",
        *compose_command("locust-worker", "compose/workers.yml"),
    ]
    for argv in (locust.master_command, worker, remote):
        assert group_of(Path(argv[1]).name, argv) is None, argv


def test_the_tests_own_servers_are_in_no_group():
    # tests/support/local_services.py and tests/support/demo_api.py
    assert group_of("postgres", ["postgres", "-p", "5433", "-c", "listen_addresses=127.0.0.1"]) is None
    assert group_of("redis-server", ["redis-server 127.0.0.1:6380"]) is None
    assert (
        group_of("redis-server", ["redis-server", "--port", "6380", "--bind", "127.0.0.1", "--save", ""])
        is None
    )
    assert group_of("prometheus", ["/bin/prometheus", "--config.file=/etc/prometheus/prometheus.yml"]) is None
    assert group_of("python", ["python", "-m", "uvicorn", "demoapi.main:app", "--port", "0"]) is None


def test_every_group_the_dashboards_query_exists():
    used = set()
    for query in dashboards.panel_queries("run"):
        for operator, value in _GROUPNAME.findall(query.expr):
            used |= set(value.split("|")) if operator == "=~" else {value}
    assert used, "no dashboard queries a process group by name"
    assert used <= set(GROUPS), used - set(GROUPS)
