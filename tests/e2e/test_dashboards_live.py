"""Every panel of every dashboard shows data from a real run: each query, as Grafana would send it,
returns at least one series from the stack's Prometheus. A panel that returns nothing is listed."""

from pathlib import Path

import pytest
import yaml

from lab import dashboards
from lab.core.prometheus import Prometheus

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

# The capacity dashboard needs a run of the capacity search: its stages and the capacity it found.
CAPACITY_DASHBOARD = "loadlab-capacity"
STEP = 15  # seconds between points, as Grafana asks for a short range
RATE_INTERVAL = "1m"  # what $__rate_interval becomes at that step with a 5 s scrape interval
# Shown only once the run had failures: empty is then the right answer.
ONLY_WITH_FAILURES = {("loadlab-overview", "Top errors")}
# The open model's panels: the closed run here has no arrivals, so they must be empty (their data from a
# rate run is checked against a real Prometheus by tests/integration/test_arrivals.py).
OPEN_MODEL = {
    ("loadlab-overview", "Offered, started and dropped arrivals per second"),
    ("loadlab-overview", "p95 from the intended start vs Locust's response time"),
}


# Your own API's panels (the job `target`, TARGET_METRICS): the demo stack scrapes no such job, so every
# query of theirs must be empty here; tests/e2e/test_own_api.py checks their data against an API of its own.
OWN_API_JOB = 'job="target"'


def run_window(prometheus: Prometheus, run_id: str, at: float) -> tuple[float, float]:
    """From a minute before the run started until `at`, when its last figures were scraped."""
    (start,) = prometheus.query(f'locust_run_start_timestamp_seconds{{run_id="{run_id}"}}', time=at)
    return float(start["value"][1]) - 60, at


def series_count(prometheus: Prometheus, query: dashboards.PanelQuery, start: float, end: float) -> int:
    if query.instant:
        return len(prometheus.query(query.expr, time=end))
    return len(prometheus.query_range(query.expr, start, end, STEP))


def empty_panels(
    prometheus: Prometheus, run_id: str, at: float, only: set[str] | None = None, skip: set[str] = frozenset()
):
    start, end = run_window(prometheus, run_id, at)
    queries = dashboards.panel_queries(run_id, RATE_INTERVAL, f"{STEP}s", int(end - start))
    return {
        (query.dashboard, query.panel, query.ref): query.expr
        for query in queries
        if (only is None or query.dashboard in only) and query.dashboard not in skip
        if not series_count(prometheus, query, start, end)
    }


@pytest.fixture(scope="module")
def prometheus(loaded_stack):
    return Prometheus(loaded_stack.prometheus_url)


def test_every_panel_shows_data_after_a_run(loaded_stack, prometheus):
    failures = prometheus.query(f'sum(locust_request_failures_total{{run_id="{loaded_stack.run_id}"}})')
    had_failures = bool(failures) and float(failures[0]["value"][1]) > 0
    empty = empty_panels(prometheus, loaded_stack.run_id, loaded_stack.at, skip={CAPACITY_DASHBOARD})
    for dashboard, panel in ONLY_WITH_FAILURES:
        refs = {key for key in empty if key[:2] == (dashboard, panel)}
        if had_failures:
            continue  # then it must show them, and stays listed in `empty` if it does not
        assert refs, f"{panel!r} shows errors for a run without failures"
        for key in refs:
            del empty[key]
    for dashboard, panel in OPEN_MODEL:
        refs = {key for key in empty if key[:2] == (dashboard, panel)}
        assert refs, f"{panel!r} shows arrivals for a closed run"
        # (The second panel's Locust response-time query, ref B, has data here and is not in `empty`.)
        for key in refs:
            del empty[key]
    own_api = {(q.dashboard, q.panel, q.ref) for q in dashboards.panel_queries("r") if OWN_API_JOB in q.expr}
    assert own_api, "no panel shows the job target"
    assert own_api <= set(empty), (
        f"panels show a job target the demo stack does not have: {own_api - set(empty)}"
    )
    for key in own_api:
        del empty[key]
    assert not empty, "panels without data:\n" + "\n".join(f"{k}: {v}" for k, v in sorted(empty.items()))


def annotation_results(prometheus: Prometheus, run_id: str, at: float) -> dict[str, int]:
    """Annotation name -> how many series its query returns for the run."""
    start, end = run_window(prometheus, run_id, at)
    values = dashboards.grafana_values(run_id, RATE_INTERVAL, f"{STEP}s", int(end - start))
    return {
        annotation["name"]: len(
            prometheus.query_range(dashboards.substitute(annotation["expr"], values), start, end, STEP)
        )
        for annotation in dashboards.render(dashboards.overview)["annotations"]["list"]
    }


def test_annotations_mark_the_run_start_and_stop(loaded_stack, prometheus):
    found = annotation_results(prometheus, loaded_stack.run_id, loaded_stack.at)
    assert found["Run start"] and found["Run stopped"], found


def test_every_capacity_panel_shows_data_after_a_capacity_search(capacity_run, prometheus):
    empty = empty_panels(prometheus, capacity_run.run_id, capacity_run.at, only={CAPACITY_DASHBOARD})
    assert not empty, "panels without data:\n" + "\n".join(f"{k}: {v}" for k, v in sorted(empty.items()))
    found = annotation_results(prometheus, capacity_run.run_id, capacity_run.at)
    found.pop("Worker lost")  # only a run that lost a worker has it (tests/e2e/test_faults.py)
    assert all(found.values()), f"annotations without data: {found}"


def test_recording_rules_have_produced_series(loaded_stack, prometheus):
    rules = yaml.safe_load((ROOT / "prometheus" / "rules" / "recording.yml").read_text())
    start, end = run_window(prometheus, loaded_stack.run_id, loaded_stack.at)
    missing = [
        rule["record"]
        for group in rules["groups"]
        for rule in group["rules"]
        if not prometheus.query_range(rule["record"], start, end, STEP)
    ]
    assert not missing, f"recording rules without series: {missing}"
