"""The dashboards' Locust panels and the recording rules against a real run, without the compose stack.

A real Locust master with two workers loads a loopback server; a real Prometheus scrapes the
master's exporter every second and evaluates prometheus/rules/. Every panel query over the Locust
metrics this setup serves must return data: the PromQL itself (joins, quantiles, recorded series)
is checked here, the rest of the stack by tests/e2e/test_dashboards_live.py.
"""

import re
import threading
import time
from pathlib import Path

import pytest
import yaml

from lab import dashboards
from lab.core.prometheus import Prometheus
from tests.integration.exporter_target import serve
from tests.integration.test_exporter_cluster import Locust
from tests.support.local_services import PrometheusServer, wait_until

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "prometheus" / "rules"
# Served by the compose stack only: the API and the exporters (the system ones too), and what needs the lab's SLO file or
# capacity search (the locustfile here registers runs and the exporter only).
# The open model's series come from rate-scenario runs only: tests/integration/test_arrivals.py checks them.
ELSEWHERE = re.compile(
    r"^(http_|api_|pg_|redis_|process_|node_|namedprocess_|locust_slo_pass$|locust_capacity_|locust_arrival"
    r"|locust_request_intended)"
)
RATE_INTERVAL = "4s"  # four scrapes, as Grafana's $__rate_interval would be


@pytest.fixture
def target():
    server = serve()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def prometheus_with_rules():
    """Start a Prometheus with the lab's rules; the test passes the port it scrapes."""
    started = []

    def start(exporter_port: int) -> Prometheus:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules/recording.yml", "rules/slo.yml"],
            "scrape_configs": [
                {"job_name": "locust", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}
            ],
        }
        server = PrometheusServer(yaml.safe_dump(config), files={"rules": RULES})
        started.append(server)
        return Prometheus(server.start().url)

    yield start
    for server in started:
        server.stop()


def metrics_of(expr: str) -> set[str]:
    # A metric name is followed by its label selector or, with none, by a range: `locust_slo_pass[33s]`.
    return set(re.findall(r"([a-zA-Z_:][\w:]*)[{[]", expr))


def test_locust_panels_and_recording_rules_show_data_from_a_real_run(tmp_path, target, prometheus_with_rules):
    locust = Locust(tmp_path, target, "Shopper", workers=2)
    try:
        wait_until(lambda: locust.value("locust_workers", state="ready") == 2, 30, 0.2, "two workers ready")
        prometheus = prometheus_with_rules(locust.exporter_port)
        locust.swarm(8)
        run_id = wait_until(lambda: (r := locust.run())["state"] == "running" and r["run_id"], 30, 0.2)
        start = time.time()
        # Enough scrapes and rule evaluations for every window the panels and rules use at this scale.
        wait_until(lambda: time.time() - start > 20, 30, 0.5, "20 s of load")
        locust.stop_test()
        wait_until(
            lambda: prometheus.query(f'locust_runner_state{{run_id="{run_id}", state="stopped"}} == 1'),
            30,
            0.5,
            "prometheus saw the run stop",
        )
        end = time.time()

        checked, empty = 0, {}
        for query in dashboards.panel_queries(run_id, RATE_INTERVAL, "1s", int(end - start) + 10):
            if any(ELSEWHERE.match(metric) for metric in metrics_of(query.expr)):
                continue
            checked += 1
            if query.instant:
                result = prometheus.query(query.expr, time=end)
            else:
                result = prometheus.query_range(query.expr, start - 10, end, 1)
            if not result:
                empty[(query.dashboard, query.panel, query.ref)] = query.expr
        assert checked >= 30, f"only {checked} queries checked"
        assert not empty, "panels without data:\n" + "\n".join(f"{k}: {v}" for k, v in sorted(empty.items()))

        recorded = [
            rule["record"]
            for group in yaml.safe_load((RULES / "recording.yml").read_text())["groups"]
            for rule in group["rules"]
        ]
        missing = [
            name
            for name in recorded
            if not prometheus.query_range(f'{name}{{run_id="{run_id}"}}', start, end, 1)
        ]
        assert not missing, f"recording rules without series: {missing}"

        # The Shopper's /fail requests fail: the run's error ratio is recorded and is positive.
        assert prometheus.query_range(
            f'run_id:locust_request_failures_per_requests:ratio_rate5m{{run_id="{run_id}"}} > 0',
            start,
            end,
            1,
        )
    finally:
        locust.stop()
