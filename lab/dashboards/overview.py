"""The load test overview, Grafana's home dashboard: the chosen run's load, throughput, failures,
response times, the host's CPU and the busiest services, endpoints, workers and SLO verdicts.
"""

from lab.dashboards.panels import (
    BUCKETS,
    FAILURES,
    HOST_CORES,
    HOST_CPU_CORES,
    NODE,
    RATE,
    REQUESTS,
    RUN,
    SATURATION_THRESHOLDS,
    SERVICE_CPU_CORES,
    Column,
    Limits,
    dashboard,
    layout,
    locust_quantile,
    pass_fail_mappings,
    right_axis,
    stat,
    table,
    targets,
    timeseries,
    users_and_rps,
)


def overview(limits: Limits):
    error_ratio = f"sum(rate({FAILURES}{RATE})) / sum(rate({REQUESTS}{RATE}))"

    def per_endpoint(counter: str) -> str:
        return f"sum by (method, name) (increase({counter}[$__range]))"

    def per_run(series: str, how: str) -> str:
        """`how` (max, min) of `series` per run seen in the time range, labelled with the run's scenario."""
        seen = "max by (run_id, scenario) (last_over_time(locust_run_info[$__range]))"
        return (
            f"{how} by (run_id, scenario) ({how} by (run_id) (last_over_time({series}[$__range])) "
            f"* on (run_id) group_left (scenario) {seen})"
        )

    def endpoint_quantile(q: float) -> str:
        return f"histogram_quantile({q}, sum by (method, name, le) (increase({BUCKETS}[$__range])))"

    def intended_quantile(q: float) -> str:
        return (
            f"histogram_quantile({q}, sum by (le) "
            f"(rate(locust_request_intended_duration_seconds_bucket{{{RUN}}}{RATE})))"
        )

    panels = layout(
        (
            5,
            [
                (4, stat("Users", targets(("users", f"sum(locust_users{{{RUN}}})")))),
                (
                    4,
                    stat("Requests/s", targets(("requests/s", f"sum(rate({REQUESTS}{RATE}))")), unit="reqps"),
                ),
                (
                    4,
                    stat("Failures/s", targets(("failures/s", f"sum(rate({FAILURES}{RATE}))")), unit="reqps"),
                ),
                (
                    4,
                    stat(
                        "Error ratio",
                        targets(("error ratio", error_ratio)),
                        unit="percentunit",
                        thresholds=limits.error_ratio,
                        decimals=2,
                    ),
                ),
                (
                    4,
                    stat(
                        "p95 response time",
                        targets(("p95", locust_quantile(0.95))),
                        unit="s",
                        thresholds=limits.latency,
                    ),
                ),
                (
                    4,
                    stat(
                        "p99 response time",
                        targets(("p99", locust_quantile(0.99))),
                        unit="s",
                        thresholds=limits.latency,
                    ),
                ),
            ],
        ),
        (
            5,
            [
                (
                    24,
                    stat(
                        "SLO verdicts",
                        targets(("{{objective}}", f"locust_slo_pass{{{RUN}}}")),
                        description="One tile per objective of locust/slo.yaml, once the run has its verdicts.",
                        mappings=pass_fail_mappings(),
                        graph=False,
                        text_mode="value_and_name",
                        no_value="judged when the run ends",
                    ),
                ),
            ],
        ),
        (
            8,
            [
                (12, users_and_rps()),
                (
                    12,
                    timeseries(
                        "Failures per second and error ratio",
                        targets(("failures/s", f"sum(rate({FAILURES}{RATE}))"), ("error ratio", error_ratio)),
                        unit="reqps",
                        overrides=[right_axis("error ratio", "percentunit")],
                    ),
                ),
            ],
        ),
        (
            8,
            [
                (
                    12,
                    timeseries(
                        "Response time percentiles",
                        targets(
                            ("p50", locust_quantile(0.5)),
                            ("p95", locust_quantile(0.95)),
                            ("p99", locust_quantile(0.99)),
                        ),
                        unit="s",
                        thresholds=limits.latency,
                    ),
                ),
                (
                    12,
                    timeseries(
                        "p95 response time by endpoint",
                        targets(("{{method}} {{name}}", locust_quantile(0.95, by="method, name, le"))),
                        unit="s",
                    ),
                ),
            ],
        ),
        "System: the host's CPU and the busiest services (what a latency rise may come from)",
        (
            7,
            [
                (
                    12,
                    timeseries(
                        "Host CPU busy and load, per core",
                        targets(
                            ("CPU busy", f"{HOST_CPU_CORES} / {HOST_CORES}"),
                            ("load per core", f"sum(node_load1{{{NODE}}}) / {HOST_CORES}"),
                        ),
                        unit="percentunit",
                        thresholds=SATURATION_THRESHOLDS,
                        description="The share of the host's cores in use, and the 1-minute load average per "
                        "core (above 100%, tasks queue for a CPU). Generators and the system under test share "
                        "this machine. More in the System dashboard.",
                    ),
                ),
                (
                    12,
                    timeseries(
                        "Busiest services' CPU, in cores",
                        targets(("{{groupname}}", f"topk(3, {SERVICE_CPU_CORES})")),
                        description="The three compose services using the most CPU at each moment. A "
                        "single-threaded one (the API's uvicorn, Redis, a Locust process) is at its limit at 1.",
                    ),
                ),
            ],
        ),
        "Open model (rate scenario): offered load, drops, and the time from the intended start",
        (
            8,
            [
                (
                    12,
                    timeseries(
                        "Offered, started and dropped arrivals per second",
                        targets(
                            ("offered", f"sum(locust_arrival_rate{{{RUN}}})"),
                            ("due", f"sum(rate(locust_arrivals_total{{{RUN}}}{RATE}))"),
                            ("dropped", f"sum(rate(locust_arrivals_dropped_total{{{RUN}}}{RATE}))"),
                            ("requests", f"sum(rate({REQUESTS}{RATE}))"),
                        ),
                        unit="reqps",
                        description="The rate scenario's target, the arrivals due, those that found no free "
                        "user within max_delay (dropped), and the requests completed. Empty for closed-model runs.",
                    ),
                ),
                (
                    12,
                    timeseries(
                        "p95 from the intended start vs Locust's response time",
                        targets(
                            ("from intended start", intended_quantile(0.95)),
                            ("response time", locust_quantile(0.95)),
                            (
                                "wait for a free user",
                                "histogram_quantile(0.95, sum by (le) "
                                f"(rate(locust_arrival_lateness_seconds_bucket{{{RUN}}}{RATE})))",
                            ),
                        ),
                        unit="s",
                        thresholds=limits.latency,
                        description="The gap is the queueing a closed model hides (coordinated omission): "
                        "each request's response time plus its arrival's wait for a free user.",
                    ),
                ),
            ],
        ),
        "Endpoints and errors (over the time range shown)",
        (
            10,
            [
                (
                    15,
                    table(
                        "Per endpoint",
                        [
                            (
                                "avg_over_time((sum by (method, name) "
                                f"(rate({REQUESTS}{RATE})) > 0)[$__range:])",
                                Column("requests/s", "reqps", 1),
                            ),
                            (
                                f"{per_endpoint(FAILURES)} / {per_endpoint(REQUESTS)}",
                                Column("error ratio", "percentunit", 2, limits.error_ratio),
                            ),
                            (endpoint_quantile(0.95), Column("p95", "s", thresholds=limits.latency)),
                            (endpoint_quantile(0.99), Column("p99", "s", thresholds=limits.latency)),
                        ],
                        description="Over the time range shown: mean requests/s while the endpoint was "
                        "requested, error ratio, and p95/p99 of all its requests.",
                    ),
                ),
                (
                    9,
                    table(
                        "Top errors",
                        [
                            (
                                "topk(10, sum by (name, error) "
                                f"(increase(locust_errors_total{{{RUN}}}[$__range]))) > 0",
                                Column("count", "short", 0),
                            )
                        ],
                    ),
                ),
            ],
        ),
        "Workers",
        (
            7,
            [
                (
                    8,
                    timeseries(
                        "Workers by state",
                        targets(("{{state}}", f"sum by (state) (locust_workers{{{RUN}}})")),
                        stacked=True,
                    ),
                ),
                (
                    8,
                    timeseries(
                        "Workers per host",
                        targets(
                            ("{{host}}", f'count by (host) (locust_worker_state{{{RUN}, state!="missing"}})')
                        ),
                        stacked=True,
                        description="Connected workers by the machine they run on; machines join with "
                        "`lab workers up`.",
                    ),
                ),
                (
                    8,
                    timeseries(
                        "Worker CPU",
                        targets(("{{worker}}", f"locust_worker_cpu_usage_ratio{{{RUN}}}")),
                        unit="percentunit",
                        description="Locust warns above 90%: a saturated worker under-reports the system's speed.",
                        thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 0.9}],
                    ),
                ),
            ],
        ),
        "Runs (over the time range shown)",
        (
            8,
            [
                (
                    24,
                    table(
                        "Runs",
                        [
                            (
                                per_run("locust_run_start_timestamp_seconds", "max") + " * 1000",
                                Column("start", "dateTimeAsIso"),
                            ),
                            (
                                per_run("locust_slo_pass", "min"),
                                Column("SLOs", "short", mappings=pass_fail_mappings()),
                            ),
                        ],
                        description="Every run Prometheus saw in the time range, newest first: its scenario, "
                        "start, and whether it met all objectives of locust/slo.yaml (empty until it ended).",
                        sort_by="start",
                        descending=True,
                    ),
                ),
            ],
        ),
    )
    return dashboard(
        "loadlab-overview",
        "Load test overview",
        "The run chosen in Run: load, throughput, failures, response times, endpoints, workers and SLOs.",
        panels,
        ["overview"],
    )
