"""What limits capacity: the resources the lab can see, each as a fraction of the limit it really has,
judged over the steps of a capacity search; and the one sentence a stakeholder reads aloud about the
capacity found (used by capacity.json, `lab run` and the report alike).

A resource limits capacity when, at the step that ended the search (the knee or breach step, or the last
step), it is saturated (at least SATURATED of its limit) and it grew with the load (at least GROWTH of
its limit above the first step): a resource that was already that busy before any load is background, not
the load's limit.

A single-threaded process's limit is one core, or its container's CPU quota where that is lower: the demo
API exports the quota its cgroup sets (`api_cpu_quota_cores`, absent without one; compose's `cpus:`,
`API_CPUS` in .env), its CPU is measured against min(quota, one core), and the limit used is said in the
sentence ("its CPU quota of 0.5 cores") and recorded in capacity.json."""

import math
from dataclasses import dataclass

from lab.core.errors import LabError
from lab.core.prometheus import Prometheus

SATURATED = 0.85
GROWTH = 0.10
WINDOW = "$window"  # the PromQL range of each expression: a step's steady window, or a dashboard's interval
# A rate needs two samples in its range: at the stack's 5 s scrape interval, a window of at least 11 s.
MIN_WINDOW_SECONDS = 11
ELSEWHERE = "the limit is elsewhere: latency inside the service, an external dependency, or the SLO itself"
# The next search to run when one stopped at its maximum with throughput still growing.
NEXT_SEARCH = (
    "try a higher maximum (`lab run capacity --users N`), a shorter think time, or the open-model rate search "
    "(`lab run rate`)"
)

_SYSTEM = "process-exporter (compose profile `system`)"
_HOST = "node-exporter (compose profile `system`)"
_CORES = 'count(node_cpu_seconds_total{mode="idle"})'
ONE_CORE = "its one core"
# The demo API's container CPU quota (compose/api/demoapi/metrics.py), over the window: a scrape the busy
# API answered in time is enough.
_API_QUOTA = f"max(max_over_time(api_cpu_quota_cores[{WINDOW}]))"


@dataclass(frozen=True)
class Resource:
    id: str
    name: str  # as a stakeholder reads it
    limit: str  # what 100% is
    expr: str  # PromQL: utilisation as a fraction of the limit over WINDOW
    specificity: int  # 1: one component's own limit; 2: a component across the host; 3: the host
    source: str  # what provides the series (said when it is not seen)
    # Saturation beside utilisation: how long requests queued for it, (what, PromQL in seconds over WINDOW).
    evidence: tuple[str, str] | None = None
    # Resources whose saturation makes this one read saturated too: not named when one of them is.
    explained_by: tuple[str, ...] = ()
    # A single-threaded process in a container: PromQL of its container's CPU quota in cores over WINDOW
    # (absent when none is set). Below one core, the quota is its limit; `expr` divides by it.
    quota: str | None = None


RESOURCES = (
    # Single-threaded processes: one core is their limit, whatever the host has.
    Resource(
        "api_cpu",
        "the API process's CPU",
        ONE_CORE,
        # Read from outside the API where process-exporter runs: an event loop at its core answers its own
        # /metrics late or not at all (scrapes time out), and its own figure then reads low. Else its own.
        # Against min(its container's CPU quota, one core): one core when no quota is set.
        f'(sum(rate(namedprocess_namegroup_cpu_seconds_total{{groupname="api"}}[{WINDOW}])) '
        f'or max(rate(process_cpu_seconds_total{{job="api"}}[{WINDOW}]))) '
        f"/ (clamp_max({_API_QUOTA}, 1) or vector(1))",
        1,
        "process-exporter (group `api`) or the API's /metrics (job `api`)",
        quota=_API_QUOTA,
    ),
    Resource(
        "api_db_pool",
        "the API's DB pool",
        "its maximum connections",
        f"max(avg_over_time(api_db_pool_connections_in_use[{WINDOW}])) / max(api_db_pool_max_connections > 0)",
        1,
        "the demo API's pool metrics (job `api`)",
        (
            "mean wait for a connection",  # seconds
            f"sum(rate(api_db_pool_acquire_wait_seconds_sum[{WINDOW}])) "
            f"/ sum(rate(api_db_pool_acquire_wait_seconds_count[{WINDOW}]))",
        ),
        # A request holds its connection across awaits on the API's event loop: with that loop at its one
        # core, connections come back late and the pool reads full (measured on the stack when the demo's
        # CPU work ran on the loop: CPU 86%, pool 97%, waits of 0.14 s against 2.6 s when the pool itself
        # is the limit).
        ("api_cpu",),
    ),
    Resource(
        "postgres_connections",
        "Postgres connections",
        "max_connections",
        f"sum(avg_over_time(pg_stat_activity_count[{WINDOW}])) / max(pg_settings_max_connections)",
        1,
        "postgres-exporter (job `postgres`)",
    ),
    Resource(
        "redis_memory",
        "Redis memory",
        "maxmemory",
        # No maxmemory (0): no limit to measure against, not seen.
        f"max(avg_over_time(redis_memory_used_bytes[{WINDOW}])) / max(redis_memory_max_bytes > 0)",
        1,
        "redis-exporter (job `redis`) and a Redis maxmemory",
    ),
    Resource(
        "generators",
        "the load generators' CPU",
        "one core (the busiest worker)",
        # Locust's own figure from each worker's reports: it covers workers on other hosts too.
        f"max(avg_over_time(locust_worker_cpu_usage_ratio[{WINDOW}]))",
        1,
        "the Locust master's exporter (job `locust`, workers only)",
    ),
    Resource(
        "locust_master",
        "the Locust master's CPU",
        ONE_CORE,
        f'max(rate(process_cpu_seconds_total{{job="locust"}}[{WINDOW}]))',
        1,
        "the Locust master's exporter (job `locust`)",
    ),
    Resource(
        "redis_cpu",
        "Redis CPU",
        ONE_CORE,
        f"max(rate(redis_cpu_sys_seconds_total[{WINDOW}]) + rate(redis_cpu_user_seconds_total[{WINDOW}]))",
        1,
        "redis-exporter (job `redis`)",
    ),
    # Postgres runs a process per connection: the host's cores are its limit.
    Resource(
        "postgres_cpu",
        "Postgres CPU",
        "the host's cores",
        f'sum(rate(namedprocess_namegroup_cpu_seconds_total{{groupname="postgres"}}[{WINDOW}])) / {_CORES}',
        2,
        _SYSTEM + " and " + _HOST,
    ),
    Resource(
        "host_cpu",
        "the host's CPU",
        "its cores",
        f'1 - avg(rate(node_cpu_seconds_total{{mode="idle"}}[{WINDOW}]))',
        3,
        _HOST,
    ),
)
BY_ID = {r.id: r for r in RESOURCES}


def query(resource: Resource, window: str) -> str:
    """The resource's PromQL over `window` (e.g. "15s", "$__rate_interval")."""
    return resource.expr.replace(WINDOW, window)


def every_resource(window: str) -> str:
    """One PromQL of every resource's utilisation, each series labelled `resource` with its name (for a
    dashboard: a resource without data is simply absent)."""
    return " or ".join(
        f'label_replace({query(r, window)}, "resource", "{r.name}", "", "")' for r in RESOURCES
    )


def limit_of(resource: Resource, quota: float | None) -> str:
    """What 100% of `resource` is, given its container's CPU quota in cores (None: none set or seen): the
    quota where it is below the one core a single-threaded process can use, else the resource's own."""
    if resource.quota is None or quota is None or quota >= 1:
        return resource.limit
    return f"its CPU quota of {quota:.3g} cores"


def judge(
    utilisation: dict[str, list[float | None]],
    users: list[int],
    at_maximum: bool = False,
    limit_used: dict[str, str] | None = None,
) -> dict:
    """The limiter of a search whose steps had `users`, from each resource's utilisation per step (None:
    no data at that step); judged at the knee: the step that ended the search and the one before it (a
    knee or a breach lies between the two), or the last step alone when the search stopped `at_maximum`
    (nothing ended it). The busiest step is not always the last: measured on the demo stack when its CPU
    work ran on the event loop, the API's CPU at 87% of its core at the last step that bought throughput
    and 83% at the step that did not (answers came out in waves and the loop idled between them).

    Several saturated resources: the most specific one is named, then the busiest. A single process at
    its one core, a pool at its maximum or a server at its connection limit explains a busy host (the host
    is the sum of its processes), not the other way round; and Postgres across the host's cores sits
    between the two. A resource that another saturated one explains (`explained_by`: the API's pool, held
    longer while the API's event loop is at its core) is not named.

    `limit_used`: what 100% was for a resource whose limit the stack sets (limit_of), by its id."""
    limit_used = {r.id: r.limit for r in RESOURCES} | (limit_used or {})
    seen = {  # in the table's order
        r.id: utilisation[r.id] for r in RESOURCES if any(v is not None for v in utilisation.get(r.id, ()))
    }
    result = {
        "saturated_at": SATURATED,
        "resources": {
            rid: {"name": BY_ID[rid].name, "limit": limit_used[rid], "utilisation": values}
            for rid, values in seen.items()
        },
        "limiter": None,
    }
    if not users:
        return result
    last = len(users) - 1
    judged_steps = (last,) if at_maximum else (last - 1, last)
    candidates = []
    for rid, values in seen.items():
        first = next(i for i, v in enumerate(values) if v is not None)
        # Only steps after the first seen one can show growth with the load.
        judged = [(values[i], i) for i in judged_steps if i > first and values[i] is not None]
        if not judged:
            continue
        at, index = max(judged)
        if at < SATURATED or at - values[first] < GROWTH:
            continue
        candidates.append((BY_ID[rid].specificity, -at, rid, index))
    saturated = {c[2] for c in candidates}
    candidates = [c for c in candidates if not saturated.intersection(BY_ID[c[2]].explained_by)]
    if candidates:
        _, _, rid, index = min(candidates)
        resource = BY_ID[rid]
        result["limiter"] = {
            "resource": rid,
            "name": resource.name,
            "limit": limit_used[rid],
            "utilisation": seen[rid][index],
            "users": users[index],
        }
    return result


def measure(
    prometheus: Prometheus | None, steps: list[dict], unavailable: str = "", at_maximum: bool = False
) -> dict:
    """Each resource's utilisation over each step's steady window (an instant query at its end over its
    length), judged: the `limiter`, every seen resource's figures per step, the limit each was measured
    against (with `cpu_quota_cores` where a container's quota may set it: None for none), and what was
    `not_seen` and why. Without Prometheus (None, `unavailable` says why) or when it does not answer,
    nothing is seen: the verdict says so and the run goes on."""
    utilisation: dict[str, list[float | None]] = {r.id: [] for r in RESOURCES}
    failed = unavailable or ("no Prometheus to ask" if prometheus is None else "")
    failed = failed or ("no capacity step was measured" if not steps else "")
    for resource in RESOURCES:
        for step in steps:
            if failed:
                break
            try:
                result = prometheus.query(query(resource, _window(step)), time=step["ended_at"])
            except LabError as exc:
                failed = str(exc)
                break
            utilisation[resource.id].append(_value(result))
    if failed:
        utilisation = {}
    quotas = {r.id: _quota(prometheus, r, steps) for r in RESOURCES if r.quota is not None and not failed}
    limit_used = {rid: limit_of(BY_ID[rid], quota) for rid, quota in quotas.items()}
    found = judge(utilisation, [s["users"] for s in steps], at_maximum, limit_used)
    for rid, seen in found["resources"].items():
        if rid in quotas:
            seen["cpu_quota_cores"] = quotas[rid]
    for rid, seen in found["resources"].items():
        if BY_ID[rid].evidence is not None:
            what, expr = BY_ID[rid].evidence
            seen["evidence"] = {"what": what, "values": [_evidence(prometheus, expr, step) for step in steps]}
    found["not_seen"] = [
        {"resource": r.id, "name": r.name, "why": failed or f"no data from {r.source}"}
        for r in RESOURCES
        if r.id not in found["resources"]
    ]
    return found


def _window(step: dict) -> str:
    return f"{max(math.ceil(step['ended_at'] - step['started_at']), MIN_WINDOW_SECONDS)}s"


def _quota(prometheus: Prometheus, resource: Resource, steps: list[dict]) -> float | None:
    """The resource's container CPU quota over the whole search (one container's, it does not change)."""
    span = {"started_at": steps[0]["started_at"], "ended_at": steps[-1]["ended_at"]}
    try:
        return _value(prometheus.query(resource.quota.replace(WINDOW, _window(span)), time=span["ended_at"]))
    except LabError:
        return None  # then one core, as the utilisation's own expression falls back to


def _value(result: list[dict]) -> float | None:
    values = [float(r["value"][1]) for r in result if math.isfinite(float(r["value"][1]))]
    return max(values) if values else None


def _evidence(prometheus: Prometheus, expr: str, step: dict) -> float | None:
    try:
        return _value(prometheus.query(expr.replace(WINDOW, _window(step)), time=step["ended_at"]))
    except LabError:
        return None  # evidence only: the judgement stands without it


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def capacity_sentence(capacity: dict) -> str:
    """One sentence about a capacity search (capacity.json's figures) that claims no more than was
    measured: the capacity, or "at least" when the search stopped at its maximum; the limiter with its
    utilisation, or that none saturated; the other resources at the same step (with the limit where a
    CPU quota set it); what was not seen."""
    users, rps, reason = capacity.get("users"), capacity.get("requests_per_second"), capacity.get("reason")
    steps = capacity.get("steps") or []
    last_users = steps[-1]["users"] if steps else None
    limiter, resources = capacity.get("limiter"), capacity.get("resources") or {}
    if users is None:
        head = f"No capacity: even the first step ({last_users} users) breached the objectives"
    elif at_least(capacity):
        head = (
            f"Capacity is at least {users:g} users at {rps:.0f} requests/s; the search stopped at its maximum "
            f"(max_users) with no knee and no objective breached, so the real capacity is higher: {NEXT_SEARCH}"
        )
    else:
        ended = {"knee": "throughput stopped growing", "breach": "an objective was breached"}.get(reason)
        head = f"Capacity is {users:g} users at {rps:.0f} requests/s"
        if ended and last_users is not None:
            head += f" ({ended} at {last_users:g} users)"
    others = {  # in the table's order, whatever order the JSON keys came in
        r.id: resources[r.id]
        for r in RESOURCES
        if r.id in resources and (limiter is None or r.id != limiter["resource"])
    }
    at_last = {rid: r["utilisation"][-1] for rid, r in others.items() if r["utilisation"][-1] is not None}
    figures = ", ".join(
        f"{others[rid]['name']} {percent(v)}{_of(rid, others[rid])}" for rid, v in at_last.items()
    )
    if limiter is not None:
        verb = "is at its limit" if at_least(capacity) else "limits it"
        evidence = resources.get(limiter["resource"], {}).get("evidence") or {}
        waited = (evidence.get("values") or [None])[-1]
        text = (
            f"{head}; {limiter['name']} {verb} ({percent(limiter['utilisation'])} of {limiter['limit']} "
            f"at {limiter['users']:g} users"
            + ("" if waited is None else f"; {evidence['what']} {waited * 1000:.0f} ms")
            + ")"
        )
        return text + (f"; {figures}." if figures else ".")
    if not resources:
        if "not_seen" not in capacity:
            return head + "."  # a search from before the lab measured resources
        return f"{head}; no resource was visible to name what limits it ({_unseen(capacity)})."
    if at_least(capacity):
        return f"{head}. At {last_users:g} users: {figures}." if figures else f"{head}."
    return f"{head}; no resource the lab sees saturated with the load ({figures}), so {ELSEWHERE}."


def _of(rid: str, resource: dict) -> str:
    """A figure against another limit than the resource's usual one (a CPU quota) says which."""
    limit = resource.get("limit", BY_ID[rid].limit)
    return "" if limit == BY_ID[rid].limit else f" of {limit}"


def at_least(capacity: dict) -> bool:
    """The search ended at its maximum users with no knee and no breach: a lower bound, not a limit."""
    return capacity.get("reason") == "max_users" and capacity.get("users") is not None


def _unseen(capacity: dict) -> str:
    missing = capacity.get("not_seen") or []
    reasons = sorted({m["why"] for m in missing})
    return "; ".join(reasons) if reasons else "nothing measured"
