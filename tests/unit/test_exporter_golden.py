"""Golden test of parsed samples: /metrics as served now against the exporter as it was.

The reference (tests/support/exporter_reference.py) rebuilds every family at every scrape and renders
it with prometheus_client's generate_latest. The exporter now keeps rendered rows between scrapes and
writes the request families itself. Parsed with prometheus_client's parser, both must give the same
families, types, help texts and samples, scrape after scrape, across the runs below.
"""

import argparse

import pytest
import requests
from locust import User, constant, task
from locust.env import Environment
from locust.event import Events
from locust.shape import LoadTestShape
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lab.plugin import runs
from lab.plugin.exporter import DEFAULT_BUCKETS, LocustCollector, start_server
from tests.support.exporter_reference import ReferenceCollector, reference_exposition
from tests.support.local_services import free_port


class Baseline(LoadTestShape):
    scenario = "baseline"

    def tick(self):
        return None


class Browser(User):
    wait_time = constant(1)

    @task
    def idle(self):
        pass


@pytest.fixture
def environment(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.RESULTS_DIR_ENV, str(tmp_path / "results"))
    env = Environment(user_classes=[Browser], events=Events(), host="http://127.0.0.1:1")
    env.create_local_runner()
    yield env
    env.runner.quit()


def parsed(text: str) -> dict:
    """{family: (type, help, sorted samples)} as Prometheus's text parser reads the exposition."""
    families = {}
    for family in text_string_to_metric_families(text):
        samples = sorted(
            (s.name, tuple(sorted(s.labels.items())), s.value, s.timestamp) for s in family.samples
        )
        families[family.name] = (family.type, family.documentation, samples)
    return families


class Pair:
    """The exporter and the reference over one environment, scraped together."""

    def __init__(self, environment, **options):
        self.reference = ReferenceCollector(environment, **options)
        self.exporter = LocustCollector(environment, **options)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.exporter)

    def scrape(self) -> dict:
        want = parsed(reference_exposition(self.reference))
        served = parsed(self.exporter.exposition().decode())
        assert served == want
        assert parsed(generate_latest(self.registry).decode()) == want  # the registry's view too
        return want


def log(env, name, response_time, method="GET", exception=None, length=100):
    env.events.request.fire(
        request_type=method,
        name=name,
        response_time=response_time,
        response_length=length,
        exception=exception,
        context={},
    )


SPREAD = (
    0.4,
    1.0,
    2.0,
    3.7,
    5.0,
    12.0,
    49.0,
    51.0,
    99.6,
    100.0,
    149.0,
    151.0,
    740.0,
    2499.0,
    9000.0,
    31000.0,
)


def test_many_names_scrape_after_scrape_as_counters_grow(environment):
    runs.start_run(environment)
    pair = Pair(environment, max_names=400)
    assert pair.scrape()["locust_requests"][2] == []  # a run with no request yet
    for n in range(300):
        for i, response_time in enumerate(SPREAD[: 3 + n % 13]):
            log(environment, f"/items/{n}", response_time * (1 + n % 7), length=n * i)
        if n % 3 == 0:
            log(environment, f"/items/{n}", 8.0, method="POST", exception=RuntimeError(f"item {n} gone"))
    first = pair.scrape()
    assert len(first["locust_requests"][2]) == 400
    for round_ in range(3):  # some names grow, others stay, new ones appear
        for n in range(0, 300, 7 + round_):
            log(environment, f"/items/{n}", SPREAD[(n + round_) % len(SPREAD)])
        log(environment, f"/new/{round_}", 3.0)
        log(environment, "/items/1", None)  # counted as a request, with no response time
        samples = pair.scrape()
    assert samples != first


def test_names_and_errors_past_the_bounds_fold_into_other(environment):
    runs.start_run(environment)
    pair = Pair(environment, max_names=10, max_errors=3)
    for scrape in range(3):
        for n in range(30):
            method = "POST" if n % 4 == 0 else "GET"
            error = ValueError(f"bad page {n} {'x' * n}") if n % 2 else None
            log(environment, f"/pages/{n + scrape * 5}", 5.0 + n, method=method, exception=error)
        samples = pair.scrape()
    names = {dict(labels)["name"] for _n, labels, _v, _t in samples["locust_requests"][2]}
    assert "other" in names and len(names) == 11
    errors = {dict(labels)["error"] for _n, labels, _v, _t in samples["locust_errors"][2]}
    assert "other" in errors


def test_label_values_that_need_escaping(environment):
    runs.start_run(environment)
    pair = Pair(environment)
    for name in ('/say "hi"', "/back\\slash", "/two\nlines", "/ünï/çødé", ""):
        log(environment, name, 7.0)
        log(environment, name, 70.0, exception=RuntimeError(f'no "{name}" here\\'))
    pair.scrape()


def test_a_stats_reset_and_a_new_run_drop_the_old_series(environment):
    first = runs.start_run(environment)
    pair = Pair(environment, max_names=5)
    for n in range(8):
        log(environment, f"/a/{n}", 5.0)
    assert {dict(s[1])["run_id"] for s in pair.scrape()["locust_requests"][2]} == {first.run_id}

    environment.stats.reset_all()  # within the run: the same entries, zeroed, then the same counts again
    pair.scrape()
    for n in range(8):
        log(environment, f"/a/{n}", 5.0 if n % 2 else 6.0)
    pair.scrape()

    environment.stats.reset_all()
    environment.shape_class = Baseline()
    second = runs.start_run(environment)  # as lab.plugin.runs does on a reset: a new run id
    assert second.run_id != first.run_id
    log(environment, "/b", 5.0)
    samples = pair.scrape()
    assert {dict(s[1])["run_id"] for series in samples.values() for s in series[2]} == {second.run_id}

    environment.stats.clear_all()  # the entries themselves replaced
    log(environment, "/a/1", 6.0)
    pair.scrape()


def test_empty_stats_and_no_run(environment):
    pair = Pair(environment)
    pair.scrape()  # no run yet: run_id ""
    runs.start_run(environment)
    pair.scrape()


def test_the_server_serves_the_exposition_and_the_process_metrics(environment):
    runs.start_run(environment)
    for n in range(20):
        log(environment, f"/items/{n}", 3.0 * n)
    options = argparse.Namespace(
        exporter_port=free_port(),
        exporter_host="127.0.0.1",
        exporter_buckets=DEFAULT_BUCKETS,
        exporter_max_names=10,
        exporter_max_errors=10,
    )
    server, thread = start_server(environment, options)
    try:
        response = requests.get(f"http://127.0.0.1:{options.exporter_port}/metrics", timeout=5)
        assert (
            requests.post(f"http://127.0.0.1:{options.exporter_port}/metrics", timeout=5).status_code == 405
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    response.raise_for_status()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    served = parsed(response.text)
    assert "process_cpu_seconds" in served
    locust = {name: family for name, family in served.items() if name.startswith("locust_")}
    assert locust == parsed(
        reference_exposition(ReferenceCollector(environment, max_names=10, max_errors=10))
    )
