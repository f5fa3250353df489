"""Soak: long-window trends and drift of response time, errors, throughput and memory."""

from lab.dashboards.panels import (
    RATE,
    RUN,
    Limits,
    dashboard,
    layout,
    right_axis,
    stat,
    target,
    targets,
    timeseries,
)


def soak(limits: Limits):
    p95 = f"run_id:locust_request_duration_seconds:p95_rate5m{{{RUN}}}"
    errors = f"run_id:locust_request_failures_per_requests:ratio_rate5m{{{RUN}}}"
    rps = f"run_id:locust_requests:rate5m{{{RUN}}}"
    api_memory = 'process_resident_memory_bytes{job="api"}'
    master_memory = 'process_resident_memory_bytes{job="locust"}'

    def smooth(recorded: str) -> str:
        # The five-minute series averaged over each step, so six hours render without aliasing.
        return f"avg_over_time({recorded}{RATE})"

    # `limit`: the drift limit of the `soak` section of locust/slo.yaml that `lab report` judges.
    def per_hour(title: str, series: str, unit: str, limit: str) -> object:
        return stat(
            title,
            [target(f"sum(deriv({series}[$__range])) * 3600", instant=True)],
            unit=unit,
            description="The slope of a least-squares line over the time range shown, per hour: "
            f"near zero for a steady system, red above {limits.soak[limit]:g}.",
            thresholds=[{"color": "green", "value": None}, {"color": "red", "value": limits.soak[limit]}],
            graph=False,
        )

    drift = ["firstNotNull", "lastNotNull", "min", "max"]
    panels = layout(
        (
            5,
            [
                (6, per_hour("p95 drift per hour", p95, "s", "max_p95_slope_seconds_per_hour")),
                (
                    6,
                    per_hour(
                        "Error ratio drift per hour", errors, "percentunit", "max_error_ratio_slope_per_hour"
                    ),
                ),
                (
                    6,
                    per_hour(
                        "API memory growth per hour",
                        api_memory,
                        "bytes",
                        "max_api_memory_slope_bytes_per_hour",
                    ),
                ),
                (
                    6,
                    per_hour(
                        "Locust master memory growth per hour",
                        master_memory,
                        "bytes",
                        "max_locust_memory_slope_bytes_per_hour",
                    ),
                ),
            ],
        ),
        (
            9,
            [
                (
                    12,
                    timeseries(
                        "p95 response time (5 min windows)",
                        targets(("p95", smooth(p95))),
                        unit="s",
                        thresholds=limits.latency,
                        legend_calcs=drift,
                    ),
                ),
                (
                    12,
                    timeseries(
                        "Error ratio (5 min windows)",
                        targets(("error ratio", smooth(errors))),
                        unit="percentunit",
                        thresholds=limits.error_ratio,
                        legend_calcs=drift,
                    ),
                ),
            ],
        ),
        (
            9,
            [
                (
                    12,
                    timeseries(
                        "Requests per second (5 min windows)",
                        targets(("requests/s", smooth(rps)), ("users", f"sum(locust_users{{{RUN}}})")),
                        unit="reqps",
                        legend_calcs=drift,
                        overrides=[right_axis("users", "short")],
                    ),
                ),
                (
                    12,
                    timeseries(
                        "Memory: API and Locust master",
                        targets(("API {{instance}}", api_memory), ("Locust master", master_memory)),
                        unit="bytes",
                        legend_calcs=drift,
                    ),
                ),
            ],
        ),
    )
    return dashboard(
        "loadlab-soak",
        "Soak",
        "Long runs: trends and drift of response time, errors, throughput and memory.",
        panels,
        ["soak"],
        time_from="now-6h",
    )
