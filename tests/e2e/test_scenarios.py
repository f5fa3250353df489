"""Scenarios on the compose stack through `lab run`: a short capacity search against the demo API,
an impossible SLO failing the run, an unknown scenario refused. Each run is bounded by its
parameters (a few minutes at most)."""

import json

import pytest

pytestmark = pytest.mark.e2e


def gauge(stack, promql: str, at: float | None = None) -> dict:
    """{objective or "": value} of an instant query (at a past time, or once Prometheus has scraped it)."""
    samples = stack.wait_for(lambda: stack.query(promql, at=at), 60, f"Prometheus has no {promql}")
    return {s["metric"].get("objective", ""): float(s["value"][1]) for s in samples}


def test_lab_run_of_an_unknown_scenario_lists_the_valid_ones(stack):
    result = stack.lab("run", "nosuch", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "lab: error: unknown scenario 'nosuch': valid scenarios are baseline, stress, spike, soak, capacity, mixed, rate, rate-stress, rate-spike, rate-soak, rate-capacity"
    )


def test_an_impossible_slo_fails_the_run_naming_the_objective(stack):
    result = stack.lab(
        "run", "baseline", "--users", "5", "--duration", "20s", "--set", "ramp=2s", "--slo", "catalog-p95=0.1ms",
        check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "lab: SLO failed: catalog-p95" in result.stderr
    run_id = stack.current_run_id()
    verdict = json.loads((stack.results_dir / run_id / "slo.json").read_text())
    assert "catalog-p95" in verdict["failed"] and verdict["passed"] is False
    exported = gauge(stack, f'locust_slo_pass{{run_id="{run_id}"}}')
    assert exported["catalog-p95"] == 0.0
    assert exported["errors"] == 1.0


def test_a_short_capacity_run_finds_the_capacity_and_writes_it(stack, capacity_run):
    result, run_id = capacity_run.result, capacity_run.run_id
    assert result.returncode == 0, result.stdout + result.stderr
    assert "capacity search: " in result.stdout
    assert run_id.endswith("-capacity")
    folder = stack.results_dir / run_id
    capacity = json.loads((folder / "capacity.json").read_text())
    steps = capacity["steps"]
    assert capacity["reason"] in ("knee", "breach", "max_users")
    assert [s["users"] for s in steps] == [5, 10, 15, 20, 25][: len(steps)]
    assert capacity["users"] in [s["users"] for s in steps if s["passed"]]
    assert capacity["requests_per_second"] > 0
    # The master's sentence, in `lab run`'s output and the report: "at least" exactly when the search
    # stopped at its maximum; what limits it measured in the stack's Prometheus (the API's CPU at least).
    assert capacity["sentence"] in result.stdout
    assert capacity["at_least"] == (capacity["reason"] == "max_users") == ("at least" in capacity["sentence"])
    assert len(capacity["resources"]["api_cpu"]["utilisation"]) == len(steps)
    stack.lab("report", run_id)
    report = json.loads((folder / "report.json").read_text())["capacity"]
    assert report["at_least"] == capacity["at_least"]
    assert ("at least" in report["sentence"]) == capacity["at_least"]
    assert json.loads((folder / "slo.json").read_text())["passed"] is True
    assert json.loads((folder / "run.json").read_text())["parameters"]["step_duration"] == 20
    at = capacity_run.at
    assert gauge(stack, f'locust_capacity_users{{run_id="{run_id}"}}', at)[""] == capacity["users"]
    rps = gauge(stack, f'locust_capacity_requests_per_second{{run_id="{run_id}"}}', at)[""]
    assert rps == pytest.approx(capacity["requests_per_second"])


# The open model's search on the demo stack: ArrivalMix as the pool, at most five steps of 16 s (5 s left
# out of each step's judgement) offering 50, 125, 200, 275, 350 arrivals/s (it carried 90/s in a trial).
RATE_CAPACITY_ARGS = (
    "--users", "60", "--set", "start_rate=50", "--set", "step_rate=75", "--set", "rate=350",
    "--set", "step_duration=16s", "--set", "ramp=5s", "--set", "max_delay=1s",
)  # fmt: skip


def test_a_rate_capacity_search_on_the_demo_stack_finds_a_capacity_in_requests_per_second_and_says_why(stack):
    result = stack.lab("run", "rate-capacity", *RATE_CAPACITY_ARGS, check=False, timeout=600)
    print(result.stdout, result.stderr)  # the closing figures, shown with pytest -rA
    run_id = stack.current_run_id()
    assert run_id.endswith("-rate-capacity")
    folder = stack.results_dir / run_id
    capacity = json.loads((folder / "capacity.json").read_text())
    steps = capacity["steps"]
    assert [s["offered_rate"] for s in steps] == [50.0, 125.0, 200.0, 275.0, 350.0][: len(steps)]
    assert capacity["reason"] in ("dropped", "shortfall", "breach", "max_rate")
    assert result.returncode == 0, (
        result.stdout + result.stderr
    )  # judged at the capacity step: it met the SLOs
    # A capacity in requests per second: the offered rate of the last step that carried it, and its requests/s.
    carried = [s for s in steps if s["passed"]]
    assert capacity["rate"] == carried[-1]["offered_rate"] and capacity["requests_per_second"] > 0
    assert capacity["requests_per_second"] == carried[-1]["requests_per_second"]
    line = next(line for line in result.stdout.splitlines() if line.startswith("capacity: "))
    assert (
        f"{capacity['rate']:g} arrivals/s offered, {capacity['requests_per_second']:.1f} requests/s" in line
    )
    # Why it stopped: the reason, and unless every step carried its rate, what the last step did.
    assert f"search ended by {capacity['reason']}" in line
    if capacity["reason"] != "max_rate":
        last = steps[-1]
        assert not last["passed"] and f"at {last['offered_rate']:g} arrivals/s it " in line
    arrivals = json.loads((folder / "arrivals.json").read_text())
    assert arrivals["arrivals"] >= sum(s["arrivals"] for s in steps) > 0
