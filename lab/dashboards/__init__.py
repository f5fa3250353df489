"""The Grafana dashboards, as code: `lab dashboards` writes them as JSON into grafana/dashboards/.

Four dashboards read the metric contract of docs/architecture.md: the load test overview (the home
dashboard), the system under test, capacity (for stakeholder demos) and soak (long-window drift).
`panel_queries` lists every PromQL expression with its variables filled in, so tests and tools
check the same queries Grafana sends.
"""

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from lab.core.errors import LabError
from lab.dashboards.panels import (
    GREEN_RED_AT,
    RUN,
    Column,
    dashboard,
    layout,
    pass_fail_mappings,
    right_axis,
    stat,
    table,
    target,
    targets,
    timeseries,
)

DEFAULT_OUT = Path("grafana") / "dashboards"
# Where the compose file mounts grafana/dashboards inside the Grafana container.
CONTAINER_DIR = "/var/lib/grafana/dashboards"
OVERVIEW_FILE = "load-test-overview.json"

REQUESTS = f"locust_requests_total{{{RUN}}}"
FAILURES = f"locust_request_failures_total{{{RUN}}}"
BUCKETS = f"locust_request_duration_seconds_bucket{{{RUN}}}"
RATE = "[$__rate_interval]"


def locust_quantile(q: float, by: str = "le") -> str:
    return f"histogram_quantile({q}, sum by ({by}) (rate({BUCKETS}{RATE})))"


def users_and_rps(title: str = "Users and requests per second") -> object:
    return timeseries(
        title,
        targets(
            ("requests/s", f"sum(rate({REQUESTS}{RATE}))"),
            ("users", f"sum(locust_users{{{RUN}}})"),
        ),
        unit="reqps",
        overrides=[right_axis("users", "short")],
    )


def overview():
    error_ratio = f"sum(rate({FAILURES}{RATE})) / sum(rate({REQUESTS}{RATE}))"

    def per_endpoint(counter: str) -> str:
        return f"sum by (method, name) (increase({counter}[$__range]))"

    def endpoint_quantile(q: float) -> str:
        return f"histogram_quantile({q}, sum by (method, name, le) (increase({BUCKETS}[$__range])))"

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
                        thresholds=GREEN_RED_AT["error_ratio"],
                        decimals=2,
                    ),
                ),
                (
                    4,
                    stat(
                        "p95 response time",
                        targets(("p95", locust_quantile(0.95))),
                        unit="s",
                        thresholds=GREEN_RED_AT["latency"],
                    ),
                ),
                (
                    4,
                    stat(
                        "p99 response time",
                        targets(("p99", locust_quantile(0.99))),
                        unit="s",
                        thresholds=GREEN_RED_AT["latency"],
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
                        thresholds=GREEN_RED_AT["latency"],
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
                                Column("error ratio", "percentunit", 2, GREEN_RED_AT["error_ratio"]),
                            ),
                            (endpoint_quantile(0.95), Column("p95", "s", thresholds=GREEN_RED_AT["latency"])),
                            (endpoint_quantile(0.99), Column("p99", "s", thresholds=GREEN_RED_AT["latency"])),
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
    )
    return dashboard(
        "loadlab-overview",
        "Load test overview",
        "The run chosen in Run: load, throughput, failures, response times, endpoints, workers and SLOs.",
        panels,
        ["overview"],
    )


def system_under_test():
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
                        thresholds=GREEN_RED_AT["latency"],
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


def capacity():
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
                        thresholds=GREEN_RED_AT["latency"],
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
                        thresholds=GREEN_RED_AT["error_ratio"],
                        overrides=[right_axis("users", "short")],
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
                            (per_step(p95), Column("p95", "s", thresholds=GREEN_RED_AT["latency"])),
                            (
                                per_step(
                                    f"(sum by (run_id) (rate({FAILURES}{RATE})) "
                                    f"/ sum by (run_id) (rate({REQUESTS}{RATE})))"
                                ),
                                Column("error ratio", "percentunit", 2, GREEN_RED_AT["error_ratio"]),
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


MIB_50 = 50 * 2**20


def soak():
    p95 = f"run_id:locust_request_duration_seconds:p95_rate5m{{{RUN}}}"
    errors = f"run_id:locust_request_failures_per_requests:ratio_rate5m{{{RUN}}}"
    rps = f"run_id:locust_requests:rate5m{{{RUN}}}"
    api_memory = 'process_resident_memory_bytes{job="api"}'
    master_memory = 'process_resident_memory_bytes{job="locust"}'

    def smooth(recorded: str) -> str:
        # The five-minute series averaged over each step, so six hours render without aliasing.
        return f"avg_over_time({recorded}{RATE})"

    # `limit`: the default drift limits of the `soak` section of locust/slo.yaml, which `lab report` judges.
    def per_hour(title: str, series: str, unit: str, limit: float) -> object:
        return stat(
            title,
            [target(f"sum(deriv({series}[$__range])) * 3600", instant=True)],
            unit=unit,
            description="The slope of a least-squares line over the time range shown, per hour: "
            f"near zero for a steady system, red above {limit:g}.",
            thresholds=[{"color": "green", "value": None}, {"color": "red", "value": limit}],
            graph=False,
        )

    drift = ["firstNotNull", "lastNotNull", "min", "max"]
    panels = layout(
        (
            5,
            [
                (6, per_hour("p95 drift per hour", p95, "s", 0.05)),
                (6, per_hour("Error ratio drift per hour", errors, "percentunit", 0.005)),
                (6, per_hour("API memory growth per hour", api_memory, "bytes", MIB_50)),
                (6, per_hour("Locust master memory growth per hour", master_memory, "bytes", MIB_50)),
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
                        thresholds=GREEN_RED_AT["latency"],
                        legend_calcs=drift,
                    ),
                ),
                (
                    12,
                    timeseries(
                        "Error ratio (5 min windows)",
                        targets(("error ratio", smooth(errors))),
                        unit="percentunit",
                        thresholds=GREEN_RED_AT["error_ratio"],
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


# File name -> builder. The overview is Grafana's home dashboard (GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).
DASHBOARDS: dict[str, Callable] = {
    OVERVIEW_FILE: overview,
    "system-under-test.json": system_under_test,
    "capacity.json": capacity,
    "soak.json": soak,
}


# What grafanalib 0.7.1 still emits for Grafana's old dashboard schemas, which the current one dropped.
LEGACY_KEYS = ("__inputs", "rows", "sharedCrosshair", "hideControls", "style")


def render(build: Callable) -> dict:
    """The dashboard as Grafana's JSON model (plain dicts and lists), in the current schema."""
    from grafanalib._gen import DashboardEncoder

    model = json.loads(json.dumps(build().to_json_data(), cls=DashboardEncoder))
    for key in LEGACY_KEYS:
        del model[key]
    del model["timepicker"]["time_options"]  # removed by schema 41
    return model


def render_all() -> dict[str, str]:
    """File name -> the JSON text `lab dashboards` writes."""
    return {
        name: json.dumps(render(build), indent=2, sort_keys=True) + "\n" for name, build in DASHBOARDS.items()
    }


class PanelQuery(NamedTuple):
    dashboard: str  # uid
    panel: str  # title
    ref: str  # the target's refId
    expr: str  # with variables substituted
    instant: bool


VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))|\[\[(\w+)\]\]")


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace $name, ${name} and [[name]] with values[name]; an unknown name is an error."""

    def value(match: re.Match) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"variable ${name} has no value in {expr!r}")
        return values[name]

    return VARIABLE.sub(value, expr)


def grafana_values(run_id: str, rate_interval: str, interval: str, range_seconds: int) -> dict[str, str]:
    """The variables a panel query may use: $run_id and the Grafana built-ins the dashboards use."""
    return {
        "run_id": run_id,
        "__rate_interval": rate_interval,
        "__interval": interval,
        "__range": f"{range_seconds}s",
    }


def panel_queries(
    run_id: str, rate_interval: str = "1m", interval: str = "15s", range_seconds: int = 1800
) -> Iterator[PanelQuery]:
    """Every target of every panel, with its variables filled in as Grafana would."""
    values = grafana_values(run_id, rate_interval, interval, range_seconds)
    for build in DASHBOARDS.values():
        model = render(build)
        for panel in model["panels"]:
            for tgt in panel.get("targets", []):
                yield PanelQuery(
                    model["uid"],
                    panel["title"],
                    tgt["refId"],
                    substitute(tgt["expr"], values),
                    tgt["instant"],
                )


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out / name
        path.write_text(text)
        written.append(path)
    return written


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "dashboards", help="write the Grafana dashboards as JSON", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"folder to write into (default: {DEFAULT_OUT})"
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    if not args.out.parent.is_dir():
        raise LabError(
            f"{args.out.parent} does not exist: run `lab dashboards` from the Load Lab checkout or pass --out DIR"
        )
    for path in write(args.out):
        print(path)
    return 0
