"""The compose file as Compose v2 reads it, online and offline: pinned images, healthchecks, safe ports."""

import json

import pytest

from lab.core.config import Lab
from tests.support.compose import GENERATED_SECRETS, ROOT, env_file, needs_compose, run_compose
from tests.support.local_services import promtool

pytestmark = needs_compose


def compose_config(tmp_path, offline: bool, extra: str = "") -> dict:
    environ = {
        "LAB_HOME": str(ROOT),
        "LAB_ENV_FILE": str(env_file(tmp_path, extra)),
        "LAB_OFFLINE": "1" if offline else "0",
    }
    result = run_compose(
        Lab.from_environment(environ).compose_command("--profile", "*", "config", "--format", "json")
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("offline", [False, True], ids=["upstream", "offline"])
def test_every_service_is_pinned_healthchecked_and_restarted(tmp_path, offline):
    services = compose_config(tmp_path, offline)["services"]
    assert set(services) == {
        "api",
        "postgres",
        "postgres-roles",
        "redis",
        "postgres-exporter",
        "redis-exporter",
        "node-exporter",
        "process-exporter",
        "locust-master",
        "locust-worker",
        "prometheus",
        "grafana",
    }
    # One-shot steps run to completion and stay down; everything else runs, restarts and is healthchecked.
    one_shot = {name for name, service in services.items() if service.get("restart") == "no"}
    assert one_shot == {"postgres-roles"}
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: image {image} is not pinned"
        if name not in one_shot:
            assert service.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
            assert service.get("restart") == "unless-stopped", f"{name}: no restart policy"
        for dependency, condition in (service.get("depends_on") or {}).items():
            expected = "service_completed_successfully" if dependency in one_shot else "service_healthy"
            assert condition["condition"] == expected, f"{name} -> {dependency}"
    if offline:
        assert services["postgres"]["image"].startswith("loadlab-offline/")
        assert services["locust-master"]["image"].endswith("-offline")
    else:
        assert services["prometheus"]["image"].startswith("prom/prometheus:v3")


def test_only_grafana_locust_and_prometheus_are_published_on_loopback(tmp_path):
    services = compose_config(tmp_path, offline=False)["services"]
    published = {
        (name, port["target"], port["host_ip"])
        for name, service in services.items()
        for port in service.get("ports", [])
    }
    assert published == {
        ("grafana", 3000, "127.0.0.1"),
        ("locust-master", 8089, "127.0.0.1"),
        ("prometheus", 9090, "127.0.0.1"),
    }


def test_lab_bind_moves_every_published_port(tmp_path):
    services = compose_config(tmp_path, offline=False, extra="LAB_BIND=10.1.2.3\n")["services"]
    assert {port["host_ip"] for service in services.values() for port in service.get("ports", [])} == {
        "10.1.2.3"
    }


@pytest.mark.parametrize("offline", [False, True], ids=["upstream", "offline"])
def test_every_service_has_least_privilege_and_a_memory_limit(tmp_path, offline):
    services = compose_config(tmp_path, offline)["services"]
    for name, service in services.items():
        assert service.get("cap_drop") == ["ALL"] and not service.get("cap_add"), name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service.get("mem_limit"), f"{name}: no memory limit"
        assert not service.get("privileged"), name
    # Grafana writes outside its volume in ways the offline lab cannot test (no image); Postgres needs
    # its own socket directory. The others are read-only.
    assert {name for name, service in services.items() if not service.get("read_only")} == {
        "grafana",
        "postgres",
    }


def test_prometheus_has_no_lifecycle_api_and_no_cors(tmp_path):
    command = compose_config(tmp_path, offline=False)["services"]["prometheus"]["command"]
    assert "--web.enable-lifecycle" not in command and "--web.enable-admin-api" not in command
    assert "--web.cors.origin=^$$" in command  # ^$ (no origin matches), as Compose escapes it


def test_the_api_and_the_exporter_log_in_as_their_own_roles(tmp_path):
    services = compose_config(tmp_path, offline=False)["services"]
    assert services["api"]["environment"]["DATABASE_URL"].startswith("postgresql://lab_api:x@")
    assert services["postgres-exporter"]["environment"]["DATA_SOURCE_NAME"].startswith(
        "postgresql://lab_exporter:x@"
    )


def test_the_api_has_no_cpu_quota_unless_api_cpus_sets_one(tmp_path):
    assert "cpus" not in compose_config(tmp_path, offline=False)["services"]["api"]  # NanoCpus 0: none
    assert compose_config(tmp_path, offline=False, extra="API_CPUS=0.5\n")["services"]["api"]["cpus"] == 0.5


def test_missing_secrets_are_refused_by_name(tmp_path):
    unfilled = tmp_path / ".env"
    unfilled.write_text((ROOT / ".env.example").read_text())
    result = run_compose(
        Lab.from_environment({"LAB_HOME": str(ROOT), "LAB_ENV_FILE": str(unfilled)}).compose_command("config")
    )
    assert result.returncode != 0
    assert "run `lab up` once to generate .env" in result.stderr
    assert any(f"required variable {key} is missing a value" in result.stderr for key in GENERATED_SECRETS)


def test_prometheus_config_is_valid():
    result = promtool(
        "check", "config", "--syntax-only", "prometheus.yml",
        files={"prometheus.yml": ROOT / "prometheus/prometheus.yml"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
