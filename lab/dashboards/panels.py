"""Building blocks for the Grafana dashboards: panels, targets, the run variable and the grid.

Every panel and target points at the provisioned Prometheus datasource by uid, as the
{type, uid} object current Grafana expects, so a dashboard never depends on a datasource name.
Panels are laid out in rows of fixed widths (the grid is 24 columns, one height unit is 30 px),
which is what keeps them readable on a 1920x1080 screen.
"""

from typing import NamedTuple

import grafanalib.core as G

from lab.core import limits
from lab.core.errors import LabError
from lab.core.slo import QUANTILES, SOAK_KEYS, Thresholds

DATASOURCE_UID = "prometheus"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
# The dashboard schema of Grafana 12 (the compose file's image): nothing left for Grafana to migrate.
SCHEMA_VERSION = 41
GRID_COLUMNS = 24

# The selector every Locust series of the chosen run carries.
RUN = 'run_id="$run_id"'
# Locust's series of the chosen run, as several dashboards query them.
REQUESTS = f"locust_requests_total{{{RUN}}}"
FAILURES = f"locust_request_failures_total{{{RUN}}}"
BUCKETS = f"locust_request_duration_seconds_bucket{{{RUN}}}"
RATE = "[$__rate_interval]"

NO_THRESHOLDS = [{"color": "green", "value": None}]

# The host (node-exporter, job `node`) and the stack's services (process-exporter, job `process`, one
# `groupname` a compose service): the `system` profile. CPU is in cores: a rate of CPU seconds.
NODE = 'job="node"'
HOST_CORES = f'count(node_cpu_seconds_total{{{NODE}, mode="idle"}})'
# Idle and I/O wait are time the CPUs had nothing to run.
HOST_CPU_CORES = f'sum(rate(node_cpu_seconds_total{{{NODE}, mode!~"idle|iowait"}}{RATE}))'
SERVICE_CPU_CORES = (
    f'sum by (groupname) (rate(namedprocess_namegroup_cpu_seconds_total{{job="process"}}{RATE}))'
)
# Saturation starts here: a resource busier than this share of its limit queues work (the limiter's line).
SATURATED = limits.SATURATED
SATURATION_THRESHOLDS = NO_THRESHOLDS + [{"color": "red", "value": SATURATED}]


class Limits(NamedTuple):
    """The colour steps and limits the dashboards show, all from the SLO file (locust/slo.yaml)."""

    latency: (
        list  # steps for response times: orange above the tightest latency objective, red above the loosest
    )
    error_ratio: list  # steps for error ratios: red above the tightest error_ratio objective
    soak: dict[str, float]  # the soak drift limits (keys of lab.core.slo.SOAK_KEYS)


def limits(thresholds: Thresholds, source: str) -> Limits:
    """The dashboards' limits from the SLO file's thresholds; a soak limit it lacks is an error."""
    latency = sorted(
        {o.threshold for o in thresholds.objectives if o.metric in QUANTILES and o.bound == "max"}
    )
    errors = [o.threshold for o in thresholds.objectives if o.metric == "error_ratio" and o.bound == "max"]
    missing = [key for key in SOAK_KEYS if key not in thresholds.soak]
    if missing:
        raise LabError(f"{source}: soak: set {', '.join(missing)} (the soak dashboard shows them)")
    steps = (
        [("orange", latency[0]), ("red", latency[-1])] if len(latency) > 1 else [("red", v) for v in latency]
    )
    return Limits(
        latency=NO_THRESHOLDS + [{"color": color, "value": value} for color, value in steps],
        error_ratio=NO_THRESHOLDS + [{"color": "red", "value": min(errors)}] if errors else NO_THRESHOLDS,
        soak=dict(thresholds.soak),
    )


def target(
    expr: str, legend: str = "", ref: str = "A", instant: bool = False, table: bool = False
) -> G.Target:
    # intervalFactor 1: one point per $__interval, so $__rate_interval matches the step Grafana asks for.
    return G.Target(
        expr=expr,
        legendFormat=legend,
        refId=ref,
        instant=instant,
        format=G.TABLE_TARGET_FORMAT if table else G.TIME_SERIES_TARGET_FORMAT,
        intervalFactor=1,
        datasource=DATASOURCE,
    )


def targets(*queries: tuple[str, str]) -> list[G.Target]:
    """Range targets from (legend, expr) pairs, with refIds A, B, C..."""
    return [target(expr, legend, chr(ord("A") + i)) for i, (legend, expr) in enumerate(queries)]


def timeseries(
    title: str,
    queries: list[G.Target],
    unit: str = "short",
    description: str = "",
    thresholds: list | None = None,
    stacked: bool = False,
    legend_calcs: list[str] | None = None,
    overrides: list | None = None,
) -> G.TimeSeries:
    return G.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=queries,
        unit=unit,
        thresholds=thresholds or NO_THRESHOLDS,
        thresholdsStyleMode="line" if thresholds else "off",
        fillOpacity=20 if stacked else 10,
        stacking={"mode": "normal", "group": "A"} if stacked else {},
        legendDisplayMode="table" if legend_calcs else "list",
        legendCalcs=legend_calcs or [],
        tooltipMode="multi",
        overrides=overrides or [],
        maxDataPoints=None,  # as many points as the panel is wide
        editable=False,
    )


def stat(
    title: str,
    queries: list[G.Target],
    unit: str = "short",
    description: str = "",
    thresholds: list | None = None,
    mappings: list | None = None,
    calc: str = "lastNotNull",
    graph: bool = True,
    decimals: int | None = None,
    text_mode: str = "auto",
    no_value: str = "no data",
) -> G.Stat:
    return G.Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=queries,
        format=unit,
        color={"mode": "thresholds"},
        thresholds=thresholds or NO_THRESHOLDS,
        mappings=mappings or [],
        reduceCalc=calc,
        graphMode="area" if graph else "none",
        colorMode="background" if thresholds or mappings else "value",
        decimals=decimals,
        textMode=text_mode,
        noValue=no_value,
        editable=False,
    )


class Column(NamedTuple):
    name: str
    unit: str
    decimals: int | None = None
    thresholds: list | None = None
    mappings: list | None = None  # value mappings, shown in their colours


def table(
    title: str,
    columns: list[tuple[str, Column]],
    description: str = "",
    sort_by: str | None = None,
    descending: bool = False,
):
    """A table of instant queries, one column each (expr, Column), joined on their labels: one row a
    label set. `sort_by` names a column, or a label holding numbers: the rows are sorted by it, as numbers."""
    queries, overrides = [], []
    for i, (expr, column) in enumerate(columns):
        ref = chr(ord("A") + i)
        queries.append(target(expr, ref=ref, instant=True, table=True))
        # Grafana names a table query's value field "Value", or "Value #<refId>" when there are several.
        field = f"Value #{ref}" if len(columns) > 1 else "Value"
        properties = [{"id": "displayName", "value": column.name}, {"id": "unit", "value": column.unit}]
        if column.decimals is not None:
            properties.append({"id": "decimals", "value": column.decimals})
        if column.thresholds:
            properties += [
                {"id": "thresholds", "value": {"mode": "absolute", "steps": column.thresholds}},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}},
            ]
        if column.mappings:
            properties += [
                {"id": "mappings", "value": column.mappings},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}},
            ]
        overrides.append({"matcher": {"id": "byName", "options": field}, "properties": properties})
    transformations = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True}}},
    ]
    if sort_by and sort_by not in {column.name for _, column in columns}:
        conversion = {"targetField": sort_by, "destinationType": "number"}
        transformations.append({"id": "convertFieldType", "options": {"conversions": [conversion]}})
    return G.Table(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=queries,
        overrides=overrides,
        transformations=transformations,
        sortBy=[G.TableSortByField(displayName=sort_by, desc=descending)] if sort_by else [],
        editable=False,
    )


def right_axis(series: str, unit: str) -> dict:
    """An override that draws the series named `series` against a right-hand axis of its own unit."""
    return {
        "matcher": {"id": "byName", "options": series},
        "properties": [
            {"id": "custom.axisPlacement", "value": "right"},
            {"id": "unit", "value": unit},
            {"id": "custom.drawStyle", "value": "line"},
            {"id": "custom.lineInterpolation", "value": "stepAfter"},
        ],
    }


def pass_fail_mappings() -> list[dict]:
    return [
        {
            "type": "value",
            "options": {
                "0": {"text": "FAIL", "color": "red", "index": 0},
                "1": {"text": "PASS", "color": "green", "index": 1},
            },
        }
    ]


def run_variable() -> G.Template:
    """$run_id: the runs Prometheus knows, newest first (run ids sort by start time)."""
    return G.Template(
        name="run_id",
        label="Run",
        query="label_values(locust_run_info, run_id)",
        dataSource=DATASOURCE,
        refresh=G.REFRESH_ON_TIME_RANGE_CHANGE,
        sort=G.SORT_ALPHA_DESC,
    )


def annotation(name: str, expr: str, color: str, title: str, value_is_time: bool = False) -> dict:
    """An annotation from a Prometheus query: a region while the series is > 0, or, with
    `value_is_time`, a mark at the unix time (in milliseconds) the series holds."""
    return {
        "name": name,
        "datasource": DATASOURCE,
        "enable": True,
        "iconColor": color,
        "expr": expr,
        "step": "15s",
        "titleFormat": title,
        "textFormat": "",
        "tagKeys": "run_id",
        "useValueForTime": value_is_time,
    }


def run_annotations() -> list[dict]:
    """Run start, run stop, the load shape's stages and lost workers, for the run chosen in $run_id."""
    return [
        annotation(
            "Run start",
            f"locust_run_start_timestamp_seconds{{{RUN}}} * 1000",
            "green",
            "Run $run_id started",
            value_is_time=True,
        ),
        annotation(
            "Run stopped", f'locust_runner_state{{{RUN}, state="stopped"}} == 1', "red", "Run $run_id stopped"
        ),
        annotation("Shape stage", f"locust_shape_stage{{{RUN}}} == 1", "blue", "Stage {{stage}}"),
        # A lost worker sent less load than asked: the run is invalidated (run.json says so too).
        annotation(
            "Worker lost",
            f'locust_worker_state{{{RUN}, state="missing"}} == 1',
            "orange",
            "Worker {{worker}} on {{host}} lost: run $run_id is invalidated",
        ),
    ]


Row = tuple[int, list[tuple[int, G.Panel]]]


def layout(*rows: Row | str) -> list[G.Panel]:
    """Place panels on the grid: each row is (height, [(width, panel), ...]) filled left to right,
    a string starts a titled section. Panel ids follow the reading order."""
    panels, y = [], 0
    for row in rows:
        if isinstance(row, str):
            panels.append(G.RowPanel(title=row, gridPos=G.GridPos(h=1, w=GRID_COLUMNS, x=0, y=y)))
            y += 1
            continue
        height, cells = row
        x = 0
        for width, panel in cells:
            panel.gridPos = G.GridPos(h=height, w=width, x=x, y=y)
            panels.append(panel)
            x += width
        if x > GRID_COLUMNS:
            raise ValueError(f"a row of widths {[w for w, _ in cells]} is wider than {GRID_COLUMNS} columns")
        y += height
    for panel_id, panel in enumerate(panels, start=1):
        panel.id = panel_id
    return panels


def dashboard(
    uid: str, title: str, description: str, panels: list[G.Panel], tags: list[str], time_from: str = "now-30m"
) -> G.Dashboard:
    return G.Dashboard(
        uid=uid,
        title=title,
        description=description,
        tags=["loadlab", *tags],
        panels=panels,
        templating=G.Templating(list=[run_variable()]),
        # A menu of the other Load Lab dashboards that keeps the run and the time range.
        links=[
            {
                "type": "dashboards",
                "tags": ["loadlab"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "title": "Load Lab",
                "icon": "external link",
                "tooltip": "",
                "targetBlank": False,
            }
        ],
        annotations=G.Annotations(list=run_annotations()),
        schemaVersion=SCHEMA_VERSION,
        graphTooltip=G.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,  # one time axis: hover shows the same instant everywhere
        editable=False,  # provisioned from code: `lab dashboards` is where they change
        refresh="10s",
        time=G.Time(time_from, "now"),
        timezone="utc",
    )


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
