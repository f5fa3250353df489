"""The system under test: your own API (TARGET_METRICS) or the demo API, Postgres and Redis, next to the
load that drives them."""

from lab.core import conventions
from lab.dashboards.panels import (
    RATE,
    Limits,
    dashboard,
    layout,
    locust_quantile,
    right_axis,
    targets,
    timeseries,
    users_and_rps,
)

# Your own API's job (TARGET_METRICS).
TARGET = f'job="{conventions.TARGET_JOB}"'
OWN_API = (
    "Empty on the demo stack: name your API's metrics endpoints in TARGET_METRICS (README, Your own API)."
)


def your_api(limits: Limits) -> list:
    """The row of the job `target`: what its endpoints export, in whichever convention they follow."""

    def any_convention(query) -> str:
        return conventions.any_convention(lambda c: query(c, TARGET, RATE))

    return [
        (
            6,
            timeseries(
                "Your API: requests and 5xx per second",
                targets(
                    ("requests/s", any_convention(conventions.Convention.request_rate)),
                    ("5xx/s", any_convention(conventions.Convention.server_error_rate)),
                ),
                unit="reqps",
                description=f"From its request histogram or counter. {OWN_API}",
            ),
        ),
        (
            6,
            timeseries(
                "Your API: latency percentiles",
                targets(
                    *(
                        (
                            f"p{round(q * 100)}",
                            any_convention(lambda c, s, w, q=q: c.latency_quantile(q, s, w)),
                        )
                        for q in (0.5, 0.95, 0.99)
                    )
                ),
                unit="s",
                thresholds=limits.latency,
                description=f"As the service measured them, without the network and Locust's queueing. {OWN_API}",
            ),
        ),
        (
            6,
            timeseries(
                "Your API: 5xx error ratio",
                targets(("5xx / all", any_convention(conventions.Convention.error_ratio))),
                unit="percentunit",
                thresholds=limits.error_ratio,
                description=f"Answers with a 5xx status over all answers (4xx are the client's). {OWN_API}",
            ),
        ),
        (
            6,
            timeseries(
                "Your API: CPU and resident memory",
                targets(
                    ("CPU (cores)", conventions.cpu_cores(TARGET, RATE)),
                    ("resident memory", conventions.resident_memory(TARGET)),
                ),
                overrides=[right_axis("resident memory", "bytes")],
                description=f"From the process_* series most client libraries export. {OWN_API}",
            ),
        ),
    ]


def system_under_test(limits: Limits):
    api = 'job="api"'
    pg = 'job="postgres", datname="lab"'
    redis = 'job="redis"'

    def ratio(hits: str, misses: str, by: str = "") -> str:
        hit = f"sum{by} (rate({hits}{RATE}))"
        return f"{hit} / ({hit} + sum{by} (rate({misses}{RATE})))"

    panels = layout(
        "Load (Locust)",
        (
            7,
            [
                (12, users_and_rps()),
                (
                    12,
                    timeseries(
                        "p95 response time: seen by Locust and by the API",
                        targets(
                            ("Locust", locust_quantile(0.95)),
                            (
                                "API",
                                "histogram_quantile(0.95, sum by (le) "
                                f"(rate(http_request_duration_seconds_bucket{{{api}}}{RATE})))",
                            ),
                            (
                                "your API",
                                conventions.any_convention(lambda c: c.latency_quantile(0.95, TARGET, RATE)),
                            ),
                        ),
                        unit="s",
                        description="The gap between Locust's and the server's is the network and Locust's own "
                        "queueing. The demo API's, or your API's with TARGET_METRICS set.",
                    ),
                ),
            ],
        ),
        "Your API (TARGET_METRICS, job target)",
        (7, your_api(limits)),
        "API",
        (
            8,
            [
                (
                    12,
                    timeseries(
                        "API requests per second by route and status",
                        targets(
                            (
                                "{{handler}} {{status}}",
                                f"sum by (handler, status) (rate(http_requests_total{{{api}}}{RATE}))",
                            )
                        ),
                        unit="reqps",
                        stacked=True,
                    ),
                ),
                (
                    12,
                    timeseries(
                        "API p95 latency by route",
                        targets(
                            (
                                "{{handler}}",
                                "histogram_quantile(0.95, sum by (handler, le) "
                                f"(rate(http_request_duration_seconds_bucket{{{api}}}{RATE})))",
                            )
                        ),
                        unit="s",
                        thresholds=limits.latency,
                    ),
                ),
            ],
        ),
        (
            7,
            [
                (
                    8,
                    timeseries(
                        "In-flight requests",
                        targets(("{{handler}}", f"sum by (handler) (http_requests_inprogress{{{api}}})")),
                        stacked=True,
                    ),
                ),
                (
                    8,
                    timeseries(
                        "DB pool",
                        targets(
                            ("in use", f"sum(api_db_pool_connections_in_use{{{api}}})"),
                            ("size", f"sum(api_db_pool_size{{{api}}})"),
                        ),
                    ),
                ),
                (
                    8,
                    timeseries(
                        "Cache hit ratio",
                        targets(
                            (
                                "{{cache}}",
                                ratio(
                                    f"api_cache_hits_total{{{api}}}",
                                    f"api_cache_misses_total{{{api}}}",
                                    " by (cache)",
                                ),
                            )
                        ),
                        unit="percentunit",
                    ),
                ),
            ],
        ),
        "Postgres",
        (
            7,
            [
                (
                    6,
                    timeseries(
                        "Postgres connections by state",
                        targets(("{{state}}", f"sum by (state) (pg_stat_activity_count{{{pg}}})")),
                        stacked=True,
                    ),
                ),
                (
                    6,
                    timeseries(
                        "Postgres transactions/s",
                        targets(("commits/s", f"sum(rate(pg_stat_database_xact_commit{{{pg}}}{RATE}))")),
                        unit="ops",
                    ),
                ),
                (
                    6,
                    timeseries(
                        "Postgres locks by mode",
                        targets(("{{mode}}", f"sum by (mode) (pg_locks_count{{{pg}}})")),
                        stacked=True,
                    ),
                ),
                (
                    6,
                    timeseries(
                        "Postgres cache hit ratio",
                        targets(
                            (
                                "buffer cache",
                                ratio(
                                    f"pg_stat_database_blks_hit{{{pg}}}",
                                    f"pg_stat_database_blks_read{{{pg}}}",
                                ),
                            )
                        ),
                        unit="percentunit",
                    ),
                ),
            ],
        ),
        "Redis",
        (
            7,
            [
                (
                    6,
                    timeseries(
                        "Redis commands/s",
                        targets(
                            ("commands/s", f"sum(rate(redis_commands_processed_total{{{redis}}}{RATE}))")
                        ),
                        unit="ops",
                    ),
                ),
                (
                    6,
                    timeseries(
                        "Redis memory used",
                        targets(("used", f"sum(redis_memory_used_bytes{{{redis}}})")),
                        unit="bytes",
                    ),
                ),
                (
                    6,
                    timeseries(
                        "Redis hit ratio",
                        targets(
                            (
                                "keyspace",
                                ratio(
                                    f"redis_keyspace_hits_total{{{redis}}}",
                                    f"redis_keyspace_misses_total{{{redis}}}",
                                ),
                            )
                        ),
                        unit="percentunit",
                    ),
                ),
                (
                    6,
                    timeseries(
                        "Redis clients",
                        targets(("connected", f"sum(redis_connected_clients{{{redis}}})")),
                    ),
                ),
            ],
        ),
    )
    return dashboard(
        "loadlab-sut",
        "System under test",
        "Your own API (TARGET_METRICS) or the demo API, Postgres and Redis, next to the load that drives "
        "them, on one time axis.",
        panels,
        ["api", "postgres", "redis", "target"],
    )
