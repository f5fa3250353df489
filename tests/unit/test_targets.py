"""TARGET_METRICS: the setting parsed into Prometheus's file_sd targets file, written whole or not at all,
and the conventions that turn the target job's series into the report's and dashboards' queries."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from lab.cli import targets
from lab.core import conventions
from lab.core.config import Lab
from lab.core.errors import LabError

ROOT = Path(__file__).resolve().parents[2]


def lab_in(tmp_path, setting: str) -> Lab:
    """A lab home of its own (the targets file goes under it), with TARGET_METRICS in its .env."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "docker-compose.load-test.yml", home)
    (home / ".env").write_text(f"TARGET_METRICS={setting}\n")
    return Lab.from_environment({"LAB_HOME": str(home), "LAB_PROJECT": "mylab"})


def test_endpoints_become_one_group_each_with_their_path_and_scheme():
    assert targets.parse(
        "host.docker.internal:8000, https://api.example.com/internal/metrics,myapp:9100/,[::1]:9000"
    ) == [
        {"targets": ["host.docker.internal:8000"], "labels": {"__metrics_path__": "/metrics", "__scheme__": "http"}},
        {"targets": ["api.example.com"], "labels": {"__metrics_path__": "/internal/metrics", "__scheme__": "https"}},
        {"targets": ["myapp:9100"], "labels": {"__metrics_path__": "/", "__scheme__": "http"}},
        {"targets": ["[::1]:9000"], "labels": {"__metrics_path__": "/metrics", "__scheme__": "http"}},
    ]  # fmt: skip


def test_an_empty_setting_is_an_empty_list():
    assert targets.parse("") == [] and targets.parse(" , ") == []


@pytest.mark.parametrize(
    "value, why",
    [
        ("ftp://host:21/metrics", "has scheme 'ftp'"),
        ("host:80x/metrics", "has a port that is not a number"),
        ("host:70000", "has a port that is not a number"),
        ("host:0", "has port 0"),
        (":8000/metrics", "has no valid host name"),
        ("/metrics", "has no valid host name"),
        ("ho st:8000", "has a query, a fragment or a space"),
        ("host:8000/metrics?x=1", "has a query, a fragment or a space"),
        ("user:secret@host:8000", "holds credentials"),
        ("bad_host:8000", "has no valid host name"),
    ],
)
def test_a_bad_entry_is_one_line_naming_the_setting_the_entry_and_the_fix(value, why):
    with pytest.raises(LabError) as caught:
        targets.parse(f"ok:8000,{value}")
    message = str(caught.value)
    assert message.startswith(f"TARGET_METRICS: {value!r} {why}") and "\n" not in message
    assert "set TARGET_METRICS in .env" in message and "host.docker.internal:8000/metrics" in message


def write(lab: Lab) -> list[dict]:
    """As `lab up` does: the setting parsed (refused whole) first, written after the other checks."""
    groups = targets.parse(lab.setting(targets.SETTING, ""))
    targets.write(lab, groups)
    return groups


def test_lab_up_writes_the_projects_own_file_readable_by_prometheus(tmp_path):
    lab = lab_in(tmp_path, "app:8000/metrics")
    assert write(lab) == targets.parse("app:8000/metrics")
    path = tmp_path / "home" / "prometheus" / "targets" / "mylab" / "target.json"
    assert targets.path(lab) == path
    assert json.loads(path.read_text()) == targets.parse("app:8000/metrics")
    assert path.stat().st_mode & 0o777 == 0o644 and [p.name for p in path.parent.iterdir()] == ["target.json"]


def test_lab_down_removes_the_projects_file_and_folder_and_nothing_else(tmp_path):
    lab = lab_in(tmp_path, "app:8000/metrics")
    write(lab)
    other = tmp_path / "home" / "prometheus" / "targets" / "otherlab" / "target.json"
    other.parent.mkdir()
    other.write_text("[]\n")
    targets.remove(lab)
    assert not targets.path(lab).parent.exists() and other.exists()
    targets.remove(lab)  # twice: nothing left to remove is no error


def test_a_bad_setting_leaves_the_file_as_it_was(tmp_path):
    write(lab_in(tmp_path, "app:8000"))
    before = targets.path(lab_in(tmp_path, "app:8000")).read_text()
    with pytest.raises(LabError, match="TARGET_METRICS: 'app:x'"):
        write(lab_in(tmp_path, "other:9000,app:x"))
    assert targets.path(lab_in(tmp_path, "app:8000")).read_text() == before


def test_an_empty_setting_writes_an_empty_list(tmp_path):
    lab = lab_in(tmp_path, "")
    assert write(lab) == [] and json.loads(targets.path(lab).read_text()) == []


def test_prometheus_reads_the_file_as_the_target_job_from_the_folder_compose_mounts():
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == conventions.TARGET_JOB]
    assert job["file_sd_configs"] == [{"files": ["/etc/prometheus/targets/target.json"]}]
    compose = yaml.safe_load((ROOT / "docker-compose.load-test.yml").read_text())
    mount = f"./{targets.TARGETS_DIR}/${{COMPOSE_PROJECT_NAME}}:/etc/prometheus/targets:ro"
    assert mount in compose["services"]["prometheus"]["volumes"]
    assert targets.TARGETS_FILE == "target.json"


# --- conventions: a service's own metrics as queries ---------------------------------------------

SEL, WINDOW = 'job="target"', "[1m]"


def convention(key: str) -> conventions.Convention:
    return next(c for c in conventions.CONVENTIONS if c.key == key)


def test_each_convention_names_its_series_and_labels():
    fastapi, otel, otel_ms = (convention(k) for k in ("instrumentator", "otel", "otel_ms"))
    assert fastapi.request_rate(SEL, WINDOW) == 'sum(rate(http_requests_total{job="target"}[1m]))'
    assert otel.request_rate(SEL, WINDOW) == (
        'sum(rate(http_server_request_duration_seconds_count{job="target"}[1m]))'
    )
    assert 'http_response_status_code=~"5.."' in otel.server_error_rate(SEL, WINDOW)
    assert 'http_status_code=~"5.."' in otel_ms.server_error_rate(SEL, WINDOW)
    assert 'status=~"5.."' in fastapi.server_error_rate(SEL, WINDOW)  # "5xx" when grouped, "503" if not
    assert otel.latency_quantile(0.95, SEL, WINDOW) == (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(http_server_request_duration_seconds_bucket{job="target"}[1m])))'
    )
    # Milliseconds become seconds: every latency the lab shows is in seconds.
    assert otel_ms.latency_quantile(0.5, SEL, WINDOW).endswith(") * 0.001")


def test_a_5xx_rate_is_zero_not_nothing_while_requests_are_served():
    query = convention("otel").server_error_rate(SEL, WINDOW)
    assert query.endswith(' or (sum(rate(http_server_request_duration_seconds_count{job="target"}[1m])) * 0)')
    ratio = convention("otel").error_ratio(SEL, WINDOW)
    assert ratio == f"({query}) / {convention('otel').request_rate(SEL, WINDOW)}"


def test_the_first_convention_with_data_wins_in_a_query_and_in_detection():
    union = conventions.any_convention(lambda c: c.request_rate(SEL, WINDOW))
    assert union.split(" or ") == [f"({c.request_rate(SEL, WINDOW)})" for c in conventions.CONVENTIONS]
    assert conventions.detect(lambda c: c.key in ("otel", "otel_ms")).key == "otel"
    assert conventions.detect(lambda c: False) is None


def test_process_series_give_cpu_in_cores_and_resident_memory():
    assert conventions.cpu_cores(SEL, WINDOW) == 'sum(rate(process_cpu_seconds_total{job="target"}[1m]))'
    assert conventions.resident_memory(SEL) == 'sum(process_resident_memory_bytes{job="target"})'
