"""The limiter judgement and the capacity sentence, on plain numbers: utilisation per step as the
capacity search's steps measured it (fractions of each resource's limit)."""

import pytest

from lab.core import limits
from lab.core.limits import capacity_sentence, judge

pytestmark = pytest.mark.unit
USERS = [10, 20, 30, 40]


def test_a_single_resource_saturated_and_grown_is_the_limiter():
    found = judge(
        {
            "api_cpu": [0.3, 0.6, 0.9, 0.97],
            "postgres_cpu": [0.05, 0.1, 0.2, 0.31],
            "host_cpu": [0.2, 0.4, 0.6, 0.7],
        },
        USERS,
    )
    assert found["limiter"] == {
        "resource": "api_cpu",
        "name": "the API process's CPU",
        "limit": "its one core",
        "utilisation": 0.97,
        "users": 40,
    }
    assert set(found["resources"]) == {"api_cpu", "postgres_cpu", "host_cpu"}


def test_saturated_from_the_first_step_did_not_grow_with_the_load_and_is_not_the_limiter():
    found = judge({"redis_memory": [0.9, 0.9, 0.91, 0.92], "api_cpu": [0.1, 0.2, 0.3, 0.4]}, USERS)
    assert found["limiter"] is None


def test_judged_at_the_knee_the_step_that_ended_the_search_and_the_one_before():
    # Saturated two steps before the end, not at the knee: not what ended the search.
    assert judge({"api_db_pool": [0.2, 0.95, 0.6, 0.6]}, USERS)["limiter"] is None
    # Saturated at the last step that bought throughput, a little lower one step on (a single process
    # preempted more on a shared host): the knee lies between the two, so it is the limiter, at its peak.
    found = judge({"api_cpu": [0.2, 0.58, 0.87, 0.83]}, USERS)
    assert found["limiter"]["resource"] == "api_cpu"
    assert (found["limiter"]["utilisation"], found["limiter"]["users"]) == (0.87, 30)


def test_a_search_that_ran_every_step_is_judged_at_its_last_step_only():
    # Nothing ended it: what was saturated one step before and no longer is did not limit it.
    assert judge({"api_cpu": [0.2, 0.58, 0.87, 0.83]}, USERS, at_maximum=True)["limiter"] is None
    assert judge({"api_cpu": [0.2, 0.58, 0.8, 0.9]}, USERS, at_maximum=True)["limiter"]["users"] == 40


def test_just_under_the_saturation_line_is_not_saturated():
    assert judge({"api_cpu": [0.1, 0.5, 0.7, 0.849]}, USERS)["limiter"] is None
    assert judge({"api_cpu": [0.1, 0.5, 0.7, 0.85]}, USERS)["limiter"]["resource"] == "api_cpu"


def test_a_process_at_its_core_explains_a_busy_host_not_the_other_way_round():
    found = judge({"host_cpu": [0.3, 0.6, 0.9, 0.99], "generators": [0.2, 0.5, 0.8, 0.9]}, USERS)
    assert found["limiter"]["resource"] == "generators"
    found = judge({"host_cpu": [0.3, 0.6, 0.9, 0.99], "postgres_cpu": [0.2, 0.5, 0.8, 0.9]}, USERS)
    assert found["limiter"]["resource"] == "postgres_cpu"


def test_among_equally_specific_resources_the_busiest_is_named():
    found = judge({"generators": [0.2, 0.5, 0.8, 0.88], "redis_cpu": [0.1, 0.5, 1.0, 1.0]}, USERS)
    assert found["limiter"]["resource"] == "redis_cpu"


def test_a_resource_without_data_is_left_out_and_gaps_are_kept():
    found = judge({"api_cpu": [None, 0.4, None, 0.95], "host_cpu": [None, None, None, None]}, USERS)
    assert set(found["resources"]) == {"api_cpu"}
    assert found["resources"]["api_cpu"]["utilisation"] == [None, 0.4, None, 0.95]
    assert found["limiter"]["resource"] == "api_cpu"


def test_one_step_cannot_show_growth():
    assert judge({"api_cpu": [0.99]}, [10])["limiter"] is None


def test_every_resource_names_its_limit_and_uses_the_window():
    assert len({r.id for r in limits.RESOURCES}) == len(limits.RESOURCES)
    for resource in limits.RESOURCES:
        assert limits.WINDOW in resource.expr
        assert limits.WINDOW not in limits.query(resource, "15s")


def test_measure_without_prometheus_sees_nothing_and_says_why():
    found = limits.measure(
        None, [{"users": 10, "started_at": 0.0, "ended_at": 15.0}], "no --lab-prometheus-url"
    )
    assert found["limiter"] is None and found["resources"] == {}
    assert {m["resource"] for m in found["not_seen"]} == {r.id for r in limits.RESOURCES}
    assert {m["why"] for m in found["not_seen"]} == {"no --lab-prometheus-url"}


def capacity(users, rps, reason, steps, **extra):
    return {
        "users": users,
        "requests_per_second": rps,
        "reason": reason,
        "steps": [{"users": u} for u in steps],
        **extra,
    }


def test_the_sentence_names_the_limiter_and_the_other_resources_at_the_same_step():
    found = judge(
        {
            "api_cpu": [0.3, 0.6, 0.9, 0.97],
            "postgres_cpu": [0.05, 0.1, 0.2, 0.31],
            "generators": [0.1, 0.2, 0.3, 0.44],
            "host_cpu": [0.2, 0.4, 0.6, 0.78],
        },
        [40, 70, 100, 130],
    )
    text = capacity_sentence(capacity(120, 340.4, "knee", [40, 70, 100, 130], **found, not_seen=[]))
    # capacity.json and the master's HTTP answer sort their keys: the sentence keeps the table's order.
    reordered = {**found, "resources": dict(sorted(found["resources"].items(), reverse=True))}
    assert (
        capacity_sentence(capacity(120, 340.4, "knee", [40, 70, 100, 130], **reordered, not_seen=[])) == text
    )
    assert text == (
        "Capacity is 120 users at 340 requests/s (throughput stopped growing at 130 users); the API process's "
        "CPU limits it (97% of its one core at 130 users); the load generators' CPU 44%, Postgres CPU 31%, "
        "the host's CPU 78%."
    )


def test_without_a_saturated_resource_the_sentence_says_the_limit_is_elsewhere():
    found = judge({"api_cpu": [0.1, 0.2, 0.3, 0.35], "host_cpu": [0.2, 0.3, 0.4, 0.5]}, USERS)
    text = capacity_sentence(capacity(30, 90.0, "breach", USERS, **found, not_seen=[]))
    assert text == (
        "Capacity is 30 users at 90 requests/s (an objective was breached at 40 users); no resource the lab "
        "sees saturated with the load (the API process's CPU 35%, the host's CPU 50%), so the limit is "
        "elsewhere: latency inside the service, an external dependency, or the SLO itself."
    )


def test_a_search_stopped_at_its_maximum_says_at_least_and_suggests_the_next_search():
    found = judge({"api_cpu": [0.1, 0.2, 0.3, 0.4]}, USERS)
    record = capacity(40, 82.3, "max_users", USERS, **found, not_seen=[])
    assert limits.at_least(record)
    text = capacity_sentence(record)
    assert text.startswith(
        "Capacity is at least 40 users at 82 requests/s; the search stopped at its maximum"
    )
    assert "--users" in text and "rate" in text and "think time" in text
    assert text.endswith("At 40 users: the API process's CPU 40%.")


def test_at_least_is_only_for_a_search_that_ended_at_its_maximum():
    assert not limits.at_least(capacity(30, 90.0, "knee", USERS))
    assert not limits.at_least(capacity(None, None, "breach", USERS))
    assert "at least" not in capacity_sentence(capacity(30, 90.0, "knee", USERS))


def test_nothing_visible_is_said():
    record = capacity(
        30,
        90.0,
        "knee",
        USERS,
        **limits.measure(None, [{"users": 10, "started_at": 0, "ended_at": 15}], "why"),
    )
    assert capacity_sentence(record) == (
        "Capacity is 30 users at 90 requests/s (throughput stopped growing at 40 users); no resource was "
        "visible to name what limits it (why)."
    )


def test_no_capacity_when_the_first_step_breached():
    assert capacity_sentence(capacity(None, None, "breach", [10])) == (
        "No capacity: even the first step (10 users) breached the objectives."
    )


def test_the_limiters_saturation_evidence_is_in_the_sentence():
    found = judge({"api_db_pool": [0.2, 0.6, 1.0], "api_cpu": [0.1, 0.15, 0.2]}, [10, 20, 30])
    found["resources"]["api_db_pool"]["evidence"] = {
        "what": "mean wait for a connection",
        "values": [0, 0.001, 0.1234],
    }
    text = capacity_sentence(capacity(20, 50.0, "knee", [10, 20, 30], **found, not_seen=[]))
    assert (
        "the API's DB pool limits it (100% of its maximum connections at 30 users; mean wait for a "
        "connection 123 ms); the API process's CPU 20%." in text
    )


def test_the_apis_pool_read_full_because_its_event_loop_is_at_its_core_is_not_the_limiter():
    # As measured on the stack with API_CPU_WORK_MS=100 when that work ran on the event loop: connections
    # were held across a starved loop.
    found = judge({"api_cpu": [0.22, 0.56, 0.76, 0.86], "api_db_pool": [0.0, 0.0, 0.1, 0.97]}, USERS)
    assert found["limiter"]["resource"] == "api_cpu"
    # With the API's CPU low, a full pool is the limit itself.
    found = judge({"api_cpu": [0.01, 0.03, 0.03, 0.04], "api_db_pool": [0.5, 1.0, 1.0, 1.0]}, USERS)
    assert found["limiter"]["resource"] == "api_db_pool"


def test_a_cpu_quota_below_one_core_is_the_apis_limit_and_one_core_otherwise():
    api = limits.BY_ID["api_cpu"]
    assert limits.limit_of(api, None) == "its one core"  # no quota set (or none seen)
    assert limits.limit_of(api, 0.5) == "its CPU quota of 0.5 cores"
    assert limits.limit_of(api, 1 / 3) == "its CPU quota of 0.333 cores"
    assert limits.limit_of(api, 1.0) == limits.limit_of(api, 2.0) == "its one core"  # one thread, one core
    # A resource whose limit no container quota sets keeps its own.
    assert limits.limit_of(limits.BY_ID["api_db_pool"], 0.5) == "its maximum connections"
    assert [r.id for r in limits.RESOURCES if r.quota is not None] == ["api_cpu"]
    assert api.quota in api.expr  # the utilisation divides by the quota the limit names


def test_the_sentence_names_the_quota_the_apis_cpu_was_measured_against():
    found = judge(
        {"api_cpu": [0.3, 0.7, 0.93, 0.9], "host_cpu": [0.2, 0.3, 0.35, 0.36]},
        [5, 15, 25, 35],
        limit_used={"api_cpu": limits.limit_of(limits.BY_ID["api_cpu"], 0.5)},
    )
    assert found["resources"]["api_cpu"]["limit"] == found["limiter"]["limit"] == "its CPU quota of 0.5 cores"
    assert found["resources"]["host_cpu"]["limit"] == "its cores"
    text = capacity_sentence(capacity(25, 9.6, "knee", [5, 15, 25, 35], **found, not_seen=[]))
    assert text == (
        "Capacity is 25 users at 10 requests/s (throughput stopped growing at 35 users); the API process's CPU "
        "limits it (93% of its CPU quota of 0.5 cores at 25 users); the host's CPU 36%."
    )


def test_a_figure_against_a_cpu_quota_says_so_where_no_limiter_was_found():
    # As measured on the stack with API_CPUS=0.5: the API's CPU peaked under the saturation line.
    found = judge(
        {"api_cpu": [0.18, 0.55, 0.8, 0.844, 0.792], "host_cpu": [0.38, 0.52, 0.68, 0.6, 0.59]},
        [5, 15, 25, 35, 45],
        limit_used={"api_cpu": limits.limit_of(limits.BY_ID["api_cpu"], 0.5)},
    )
    assert found["limiter"] is None
    text = capacity_sentence(capacity(45, 8.0, "knee", [5, 15, 25, 35, 45], **found, not_seen=[]))
    assert "(the API process's CPU 79% of its CPU quota of 0.5 cores, the host's CPU 59%)" in text
