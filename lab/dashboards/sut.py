"""The system under test: the demo API, Postgres and Redis next to the load that drives them."""

from lab.dashboards.panels import (
    RATE,
    Limits,
    dashboard,
    layout,
    locust_quantile,
    targets,
    timeseries,
    users_and_rps,
)


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
                        ),
                        unit="s",
                        description="The gap between the two is the network and Locust's own queueing.",
                    ),
                ),
            ],
        ),
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
        "The demo API, Postgres and Redis next to the load that drives them, on one time axis.",
        panels,
        ["api", "postgres", "redis"],
    )
