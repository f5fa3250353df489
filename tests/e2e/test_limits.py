"""What limits capacity, named on the stack: short capacity searches, each with one bottleneck induced
through the demo's knobs (compose/api/README.md, "Bottleneck knobs"): the API's DB pool, the load
generators. Each run's capacity.json names the induced resource and no other.

The API's CPU (API_CPU_WORK_MS=100) is not among them yet: on this 2-core machine its one process reads
at most 81-87% of its core around the knee, across the 85% line, so that search names it in some runs
and nothing in others (issue #17 stays open on it).

The latency objectives are loosened for these runs (--slo), so that each search goes on until throughput
stops growing (the knee) rather than stopping at a p95 breach before anything is saturated. The machine
has 2 cores: each knob makes its resource saturate at about 10 requests/s, where nothing else is busy."""

import json

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.lifecycle]  # they recreate services with other settings

# From 5 to 55 users in steps of 10, 20 s each (6 s ramp): at most six steps, two minutes. The knee at
# 10% (not 25%): a search goes on while throughput still grows a little, into its resource's saturation.
SEARCH = (
    "--users", "55", "--set", "min_growth=0.1", "--set", "start_users=5", "--set", "step_users=10", "--set", "step_duration=20s",
    "--set", "ramp=6s", "--set", "spawn_rate=20",
    "--slo", "catalog-p95=20s", "--slo", "auth-p95=20s", "--slo", "orders-p95=20s",
)  # fmt: skip
KNOBS = ("API_CPU_WORK_MS", "API_DB_POOL_MAX_SIZE", "API_DB_QUERY_DELAY_MS", "LOCUST_REQUEST_CPU_MS")


@pytest.fixture(scope="module")
def induce(stack):
    """Recreate the stack's services with one bottleneck's settings (and the worker count); the stack's
    own settings and two workers come back at the end."""
    saved = dict(stack.env)

    def configure(workers: int = 2, **knobs: str) -> None:
        stack.env.clear()
        stack.env.update(saved)
        stack.env.update(knobs)
        stack.lab("up", "--workers", str(workers), timeout=900)

    yield configure
    stack.env.clear()
    stack.env.update(saved)
    stack.lab("up", "--workers", "2", timeout=900)


def search_limited_by(stack, resource: str) -> dict:
    result = stack.lab("run", "capacity", *SEARCH, check=False, timeout=600)
    run_id = stack.current_run_id()
    assert run_id and run_id.endswith("-capacity"), result.stdout + result.stderr
    capacity = json.loads((stack.results_dir / run_id / "capacity.json").read_text())
    print(f"\n{resource}: {capacity['sentence']}\n{json.dumps(capacity['resources'], sort_keys=True)}")
    assert capacity["sentence"] in result.stdout, result.stdout + result.stderr
    assert capacity["reason"] in ("knee", "breach"), capacity["sentence"]
    assert capacity["limiter"] is not None, capacity["sentence"]
    assert capacity["limiter"]["resource"] == resource, capacity["sentence"]
    assert capacity["limiter"]["utilisation"] >= 0.85
    assert capacity["limiter"]["name"] in capacity["sentence"]
    return capacity


def test_the_apis_db_pool_is_named_when_two_connections_hold_slow_queries(stack, induce):
    induce(API_DB_POOL_MAX_SIZE="2", API_DB_QUERY_DELAY_MS="300")  # about 7 acquires/s
    capacity = search_limited_by(stack, "api_db_pool")
    waited = capacity["resources"]["api_db_pool"]["evidence"]["values"]
    assert waited[-1] > waited[0]  # requests queued for a connection as the load grew


def test_the_generators_are_named_when_one_worker_burns_cpu_per_request(stack, induce):
    induce(workers=1, LOCUST_REQUEST_CPU_MS="100")  # about 10 requests/s on the worker's one core
    search_limited_by(stack, "generators")
