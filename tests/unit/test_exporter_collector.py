"""The collector on a real in-process Locust environment: what one scrape exposes, and run changes."""

import pytest
from locust import User, constant, task
from locust.env import Environment
from locust.event import Events
from locust.shape import LoadTestShape
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lab.core import slo
from lab.plugin import runs
from lab.plugin.exporter import LocustCollector, worker_labels


class Browser(User):
    wait_time = constant(1)

    @task
    def idle(self):
        pass


class Baseline(LoadTestShape):
    scenario = "baseline"

    def tick(self):
        return None


@pytest.fixture
def environment(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.RESULTS_DIR_ENV, str(tmp_path / "results"))
    env = Environment(user_classes=[Browser], events=Events(), host="http://127.0.0.1:1")
    env.create_local_runner()
    yield env
    env.runner.quit()


def scrape(registry) -> dict[str, list]:
    """{sample name: [(labels, value), ...]} of one exposition."""
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def value(samples, sample, **labels) -> float:
    matches = [v for lab, v in samples[sample] if all(lab.get(k) == want for k, want in labels.items())]
    assert len(matches) == 1, (sample, labels, samples.get(sample))
    return matches[0]


def log(env, name, response_time, exception=None, length=100):
    env.events.request.fire(
        request_type="GET",
        name=name,
        response_time=response_time,
        response_length=length,
        exception=exception,
        context={},
    )


def test_one_scrape_exposes_the_contract(environment):
    run = runs.start_run(environment)
    for response_time in (3.2, 7.0, 42.0, 180.0, 2300.0):
        log(environment, "/items/[id]", response_time)
    log(environment, "/login", 20.0, exception=RuntimeError("user 81723 locked"))
    log(environment, "/login", 25.0, exception=RuntimeError("user 99 locked"))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LocustCollector(environment))
    samples = scrape(registry)

    for name, series in samples.items():
        for labels, _ in series:
            assert labels.get("run_id") == run.run_id, name
    assert value(samples, "locust_requests_total", method="GET", name="/items/[id]") == 5
    assert value(samples, "locust_request_failures_total", method="GET", name="/login") == 2
    assert value(samples, "locust_response_size_bytes_total", method="GET", name="/items/[id]") == 500
    assert value(samples, "locust_request_duration_seconds_count", name="/items/[id]") == 5
    assert value(samples, "locust_request_duration_seconds_sum", name="/items/[id]") == pytest.approx(2.5322)
    assert value(samples, "locust_request_duration_seconds_bucket", name="/items/[id]", le="0.005") == 1
    assert value(samples, "locust_request_duration_seconds_bucket", name="/items/[id]", le="0.05") == 3
    assert value(samples, "locust_request_duration_seconds_bucket", name="/items/[id]", le="0.25") == 4
    assert value(samples, "locust_request_duration_seconds_bucket", name="/items/[id]", le="+Inf") == 5
    assert value(samples, "locust_errors_total", name="/login", error="RuntimeError('user <n> locked')") == 2
    assert value(samples, "locust_runner_state", state="ready") == 1
    assert value(samples, "locust_runner_state", state="running") == 0
    assert value(samples, "locust_users", user_class="Browser") == 0
    assert value(samples, "locust_run_info", scenario="custom", host="http://127.0.0.1:1") == 1
    assert value(samples, "locust_run_start_timestamp_seconds") == pytest.approx(run.started_at)
    assert value(samples, "locust_exporter_folded_total", kind="name") == 0
    assert "locust_workers" not in samples  # a local run has no workers
    assert "locust_shape_stage" not in samples and "locust_slo_pass" not in samples

    run.stage = "ramp"
    run.slo_verdicts = [
        slo.Verdict("p95 latency", "latency", True, 0.2, 0.5, "max", "s"),
        slo.Verdict("errors", "error_ratio", False, 0.02, 0.01, "max", "ratio"),
    ]
    run.capacity = {"users": None, "requests_per_second": None, "reason": None, "steps": []}  # searching
    assert "locust_capacity_users" not in scrape(registry)
    run.capacity = {"users": None, "requests_per_second": None, "reason": "breach", "steps": []}  # none met
    assert value(scrape(registry), "locust_capacity_users") == 0
    run.capacity = {"users": 120, "requests_per_second": 410.5, "steps": []}
    samples = scrape(registry)
    assert value(samples, "locust_shape_stage", stage="ramp") == 1
    assert value(samples, "locust_slo_pass", objective="p95 latency") == 1
    assert value(samples, "locust_slo_pass", objective="errors") == 0
    assert value(samples, "locust_capacity_users") == 120
    assert value(samples, "locust_capacity_requests_per_second") == 410.5


def test_names_and_errors_past_the_bound_fold_into_other(environment):
    runs.start_run(environment)
    for n in range(30):
        log(environment, f"/pages/{n}", 5.0, exception=ValueError(f"bad page {n}") if n % 2 else None)
    for n in range(5):
        log(environment, "/login", 5.0, exception=KeyError(f"session-{n}-{'ab' * n}"))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LocustCollector(environment, max_names=10, max_errors=2))
    samples = scrape(registry)

    names = {labels["name"] for labels, _ in samples["locust_requests_total"]}
    assert len(names) == 11 and "other" in names
    assert sum(v for _, v in samples["locust_requests_total"]) == 35
    assert sum(v for _, v in samples["locust_request_duration_seconds_count"]) == 35
    errors = {labels["error"] for labels, _ in samples["locust_errors_total"]}
    assert len(errors) <= 3 and "other" in errors
    assert sum(v for _, v in samples["locust_errors_total"]) == 20
    assert value(samples, "locust_exporter_folded_total", kind="name") == 21  # 31 names, 10 kept
    assert value(samples, "locust_exporter_folded_total", kind="error") >= 1


def test_a_new_run_starts_fresh_series_and_drops_the_old_ones(environment, monkeypatch):
    first = runs.start_run(environment)
    log(environment, "/a", 5.0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LocustCollector(environment))
    assert value(scrape(registry), "locust_requests_total", name="/a", run_id=first.run_id) == 1

    environment.stats.reset_all()
    environment.shape_class = Baseline()
    second = runs.start_run(environment)
    log(environment, "/b", 5.0)
    samples = scrape(registry)
    exposed_runs = {labels["run_id"] for series in samples.values() for labels, _ in series}
    assert exposed_runs == {second.run_id}
    assert second.run_id != first.run_id and second.run_id.endswith("-baseline")
    assert value(samples, "locust_requests_total", name="/b") == 1
    assert value(samples, "locust_requests_total", name="/a") == 0  # reset_all keeps the entry, zeroed


def test_run_ids_sort_by_time_and_name_the_scenario():
    assert runs.make_run_id(1795289400.7, "baseline") == "20261121T193000Z-baseline"
    assert runs.make_run_id(1795289399.0, "spike") < runs.make_run_id(1795289400.0, "baseline")


def test_worker_label_is_the_host_name_with_an_index_only_where_hosts_repeat():
    ids = ["worker-a_0123abcd", "host_x_99ff00", "host_x_aa11bb"]
    labels = worker_labels(ids, {"worker-a_0123abcd": 0, "host_x_99ff00": 1, "host_x_aa11bb": 2}.get)
    assert labels == {
        "worker-a_0123abcd": "worker-a",
        "host_x_99ff00": "host_x/1",
        "host_x_aa11bb": "host_x/2",
    }
