"""What limits capacity, named on the stack: short capacity searches, each with one bottleneck induced
through the demo's knobs (compose/api/README.md, "Bottleneck knobs"): the API's CPU, the API's DB pool,
the load generators. Each run's capacity.json names the induced resource and no other.

The API's CPU is induced under a CPU quota of half a core (API_CPUS=0.5) and measured against it. Its
work runs in one worker thread: when it ran on the event loop, the process read only 79-89% of its core
at the knee, across the 85% line, because the loop idled between waves of answers (compose/api/README.md).

The latency objectives are loosened for these runs (--slo), so that each search goes on until throughput
stops growing (the knee) rather than stopping at a p95 breach before anything is saturated; and the error
objective to 5%, so that one failed request is not a breach (one of a step's 86 ended a generator search at
25 users in one CI run, at 80% of the worker's core: a POST lost to the API closing an idle connection,
before its keep-alive went from uvicorn's 5 s to 75 s). The machine
has 2 cores: each knob makes its resource saturate at about 10 requests/s, where nothing else is busy."""

import json
import math

import pytest

from lab.core import limits

pytestmark = [pytest.mark.e2e, pytest.mark.lifecycle]  # they recreate services with other settings

# From 5 to 55 users in steps of 10, 20 s each (6 s ramp): at most six steps, two minutes. The knee at
# 10% (not 25%): a search goes on while throughput still grows a little, into its resource's saturation.
SEARCH = (
    "--users", "55", "--set", "min_growth=0.1", "--set", "start_users=5", "--set", "step_users=10", "--set", "step_duration=20s",
    "--set", "ramp=6s", "--set", "spawn_rate=20",
    "--slo", "catalog-p95=20s", "--slo", "auth-p95=20s", "--slo", "orders-p95=20s", "--slo", "errors=0.05",
)  # fmt: skip


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


def search(stack, resource: str) -> dict:
    """A search that ended at a knee or a breach; its capacity.json, its sentence printed by `lab run`."""
    result = stack.lab("run", "capacity", *SEARCH, check=False, timeout=600)
    run_id = stack.current_run_id()
    assert run_id and run_id.endswith("-capacity"), result.stdout + result.stderr
    capacity = json.loads((stack.results_dir / run_id / "capacity.json").read_text())
    print(f"\n{resource}: {capacity['sentence']}\n{json.dumps(capacity['resources'], sort_keys=True)}")
    assert capacity["sentence"] in result.stdout, result.stdout + result.stderr
    assert capacity["reason"] in ("knee", "breach"), capacity["sentence"]
    return capacity


def search_limited_by(stack, resource: str) -> dict:
    capacity = search(stack, resource)
    assert capacity["limiter"] is not None, capacity["sentence"]
    assert capacity["limiter"]["resource"] == resource, capacity["sentence"]
    assert capacity["limiter"]["utilisation"] >= 0.85
    assert capacity["limiter"]["name"] in capacity["sentence"]
    return capacity


def test_the_apis_cpu_is_named_and_measured_against_its_cpu_quota(stack, induce):
    # With the request's own ~5 ms, about 10 requests/s on half a core.
    induce(API_CPUS="0.5", API_CPU_WORK_MS="45")
    capacity = search_limited_by(stack, "api_cpu")
    api = capacity["resources"]["api_cpu"]
    assert (api["limit"], api["cpu_quota_cores"]) == ("its CPU quota of 0.5 cores", 0.5)
    # Named at 85% or more: against one core the process could not read more than 50%.
    assert "of its CPU quota of 0.5 cores" in capacity["sentence"]
    # The "What limits capacity" panel's query reads the same figure at the last step.
    step = capacity["steps"][-1]
    window = f"{max(math.ceil(step['ended_at'] - step['started_at']), limits.MIN_WINDOW_SECONDS)}s"
    panel = {
        r["metric"]["resource"]: r["value"][1]
        for r in stack.query(limits.every_resource(window), step["ended_at"])
    }
    assert float(panel[api["name"]]) == pytest.approx(api["utilisation"][-1])


def test_the_apis_db_pool_is_named_when_two_connections_hold_slow_queries(stack, induce):
    induce(API_DB_POOL_MAX_SIZE="2", API_DB_QUERY_DELAY_MS="300")  # about 7 acquires/s
    capacity = search_limited_by(stack, "api_db_pool")
    waited = capacity["resources"]["api_db_pool"]["evidence"]["values"]
    assert waited[-1] > waited[0]  # requests queued for a connection as the load grew


def test_the_generators_are_named_when_one_worker_burns_cpu_per_request(stack, induce):
    induce(workers=1, LOCUST_REQUEST_CPU_MS="100")  # about 10 requests/s on the worker's one core
    search_limited_by(stack, "generators")
