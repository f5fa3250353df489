"""Capacity, for stakeholder demos: how many users the system serves within its SLOs, and what limits it."""

from lab.core import limits as resources
from lab.dashboards.panels import (
    FAILURES,
    RATE,
    REQUESTS,
    RUN,
    SATURATION_THRESHOLDS,
    Column,
    Limits,
    dashboard,
    layout,
    locust_quantile,
    right_axis,
    stat,
    table,
    target,
    targets,
    timeseries,
    users_and_rps,
)


def capacity(limits: Limits):
    # The user count as a label (count_values), outside the ramps between steps: one series a step.
    steps = (
        f'(count_values by (run_id) ("users", sum by (run_id) (locust_users{{{RUN}}})) '
        f'unless on (run_id) locust_shape_stage{{{RUN}, stage="ramp"}})'
    )

    def per_step(series: str) -> str:
        """The mean of `series` (one value per run) over each step's steady part."""
        return f"avg by (users) (avg_over_time(({steps} * on (run_id) group_left () {series})[$__range:]))"

    p95 = f"run_id:locust_request_duration_seconds:p95_rate1m{{{RUN}}}"
    rps = f"run_id:locust_requests:rate1m{{{RUN}}}"
    big = {"graph": False, "decimals": 0}
    searching = "search not finished"
    panels = layout(
        (
            7,
            [
                (
                    6,
                    stat(
                        "Capacity: users",
                        targets(("users", f"max(locust_capacity_users{{{RUN}}})")),
                        description="The most users the system served within its SLOs, found by the capacity search.",
                        no_value=searching,
                        **big,
                    ),
                ),
                (
                    6,
                    stat(
                        "Capacity: requests per second",
                        targets(("requests/s", f"max(locust_capacity_requests_per_second{{{RUN}}})")),
                        unit="reqps",
                        no_value=searching,
                        **big,
                    ),
                ),
                (
                    6,
                    stat(
                        "Peak requests per second",
                        [target(f"max_over_time({rps}[$__range])", instant=True)],
                        unit="reqps",
                        **big,
                    ),
                ),
                (6, stat("Users now", targets(("users", f"sum(locust_users{{{RUN}}})")), **big)),
            ],
        ),
        (
            10,
            [
                (8, users_and_rps()),
                (
                    8,
                    timeseries(
                        "Users and response time (p95)",
                        targets(("p95", locust_quantile(0.95)), ("users", f"sum(locust_users{{{RUN}}})")),
                        unit="s",
                        thresholds=limits.latency,
                        overrides=[right_axis("users", "short")],
                    ),
                ),
                (
                    8,
                    timeseries(
                        "Users and error ratio",
                        targets(
                            ("error ratio", f"sum(rate({FAILURES}{RATE})) / sum(rate({REQUESTS}{RATE}))"),
                            ("users", f"sum(locust_users{{{RUN}}})"),
                        ),
                        unit="percentunit",
                        thresholds=limits.error_ratio,
                        overrides=[right_axis("users", "short")],
                    ),
                ),
            ],
        ),
        (
            8,
            [
                (
                    24,
                    stat(
                        "What limits capacity",
                        [target(resources.every_resource("$__rate_interval"), "{{resource}}", instant=True)],
                        unit="percentunit",
                        description="Each resource the lab sees, now, as a share of the limit it really has: one "
                        "core for a single-threaded process (the API, each Locust worker, the master, Redis), the "
                        "API's container CPU quota where one below a core is set (API_CPUS), the "
                        "host's cores for the host and Postgres, max_connections, maxmemory, the API's pool "
                        f"maximum. Red from {resources.SATURATED:.0%}: saturated. At the end of a capacity search "
                        "the lab names the one that limits it (capacity.json); a resource it cannot see is absent.",
                        thresholds=SATURATION_THRESHOLDS,
                        graph=False,
                        decimals=0,
                        text_mode="value_and_name",
                        no_value="no resource metrics",
                    ),
                ),
            ],
        ),
        (
            9,
            [
                (
                    24,
                    table(
                        "Each step of the load",
                        [
                            (per_step(rps), Column("requests/s", "reqps", 1)),
                            (per_step(p95), Column("p95", "s", thresholds=limits.latency)),
                            (
                                per_step(
                                    f"(sum by (run_id) (rate({FAILURES}{RATE})) "
                                    f"/ sum by (run_id) (rate({REQUESTS}{RATE})))"
                                ),
                                Column("error ratio", "percentunit", 2, limits.error_ratio),
                            ),
                        ],
                        description="One row a step of users, ramps left out: the mean requests/s, "
                        "the mean of the one-minute p95 and the error ratio.",
                        sort_by="users",
                    ),
                ),
            ],
        ),
    )
    return dashboard(
        "loadlab-capacity",
        "Capacity",
        "How many users the system serves within its SLOs: big numbers for a projector.",
        panels,
        ["capacity"],
    )
