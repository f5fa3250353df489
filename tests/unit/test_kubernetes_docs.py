"""The documented Kubernetes manifests stay in step with the lab: files, plugin path, exporter port, job name."""

from pathlib import Path

import yaml

from lab.plugin.exporter import DEFAULT_PORT

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "kubernetes"
MOUNT = "/home/locust/"  # where the operator mounts the locustfile ConfigMap


def locust_test() -> dict:
    return yaml.safe_load((DOCS / "locusttest.yaml").read_text())


def test_the_locust_test_uses_the_lab_plugin_and_files_of_locust_dir():
    env = {item["name"]: item["value"] for item in locust_test()["spec"]["env"]}
    locustfile, plugin = env["LOCUST_LOCUSTFILE"].split(",")
    assert f"COPY compose/locust/lab_plugin.py {plugin}" in (ROOT / "compose/locust/Dockerfile").read_text()
    for path in (locustfile, env["LOCUST_SCENARIOS_FILE"], env["LOCUST_SLO_FILE"]):
        assert path.startswith(MOUNT) and (ROOT / "locust" / path.removeprefix(MOUNT)).is_file(), path
    assert env["LOCUST_EXPORTER_PORT"] == str(DEFAULT_PORT)


def test_prometheus_scrapes_that_master_as_the_lab_job_on_the_exporter_port():
    (job,) = yaml.safe_load((DOCS / "prometheus-scrape.yaml").read_text())
    lab_jobs = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())["scrape_configs"]
    assert job["job_name"] == "locust" in {j["job_name"] for j in lab_jobs}
    keep, address = job["relabel_configs"]
    assert keep["regex"] == f"{locust_test()['metadata']['name']};master"
    assert address["replacement"] == f"$1:{DEFAULT_PORT}"
    annotations = locust_test()["spec"]["master"]["annotations"]
    assert annotations["prometheus.io/port"] == str(DEFAULT_PORT)
