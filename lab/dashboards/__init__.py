"""The Grafana dashboards, as code: `lab dashboards` writes them as JSON into grafana/dashboards/,
with the SLO alert rules into prometheus/rules/, all thresholds taken from locust/slo.yaml.

Five dashboards read the metric contract of docs/architecture.md: the load test overview (the home
dashboard), the system under test, the system's resources (USE), capacity (for stakeholder demos) and
soak (long-window drift).
`panel_queries` lists every PromQL expression with its variables filled in, so tests and tools
check the same queries Grafana sends.
"""

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from grafanalib._gen import DashboardEncoder

from lab.core.errors import LabError
from lab.core.files import check_writable, write_atomic
from lab.core.slo import load_thresholds
from lab.core.yamlconf import ConfigError
from lab.dashboards import alerts
from lab.dashboards.capacity import capacity
from lab.dashboards.overview import overview
from lab.dashboards.panels import Limits, limits
from lab.dashboards.soak import soak
from lab.dashboards.sut import system_under_test
from lab.dashboards.system import system

DEFAULT_OUT = Path("grafana") / "dashboards"
DEFAULT_RULES = Path("prometheus") / "rules"
# The one source of the thresholds the dashboards colour by and the alerts fire at.
DEFAULT_SLO = Path("locust") / "slo.yaml"
# Where the compose file mounts grafana/dashboards inside the Grafana container.
CONTAINER_DIR = "/var/lib/grafana/dashboards"
OVERVIEW_FILE = "load-test-overview.json"


# File name -> builder. The overview is Grafana's home dashboard (GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).
DASHBOARDS: dict[str, Callable] = {
    OVERVIEW_FILE: overview,
    "system-under-test.json": system_under_test,
    "system.json": system,
    "capacity.json": capacity,
    "soak.json": soak,
}


# What grafanalib 0.7.1 still emits for Grafana's older schemas and Grafana 12's no longer has, by
# where it sits; tests/unit/test_grafana_schema.py checks the result against @grafana/schema.
LEGACY_KEYS = ("__inputs", "rows", "sharedCrosshair", "hideControls", "style")
LEGACY_PANEL_KEYS = ("span", "height", "minSpan", "editable", "error")
LEGACY_TABLE_KEYS = ("color", "columns", "fontSize", "mappings")  # the old table panel's options
LEGACY_TARGET_KEYS = ("metric", "query", "step", "target")  # Graphite's and the old Prometheus editor's
LEGACY_VARIABLE_KEYS = ("auto", "auto_count", "auto_min", "tagValuesQuery", "tagsQuery", "useTags")
ROW_KEYS = ("collapsed", "gridPos", "id", "panels", "title", "type")


def without_nulls(value):
    """`value` without the null-valued keys grafanalib writes for every unset option (Grafana's
    schema wants such keys absent), except a threshold step's value, where null means "from -inf"."""
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    if isinstance(value, dict):
        step = set(value) == {"color", "value"}
        return {k: without_nulls(v) for k, v in value.items() if v is not None or step}
    return value


def current_schema(model: dict) -> dict:
    """grafanalib's JSON model brought to Grafana 12's dashboard schema: the one place that does it."""
    for key in LEGACY_KEYS:
        del model[key]
    del model["timepicker"]["time_options"]  # removed by schema 41
    for variable in model["templating"]["list"]:
        for key in LEGACY_VARIABLE_KEYS:
            variable.pop(key, None)
        del variable["current"]  # nothing chosen: Grafana picks the newest run when it loads the list
    for i, panel in enumerate(model["panels"]):
        if panel["type"] == "row":
            model["panels"][i] = {key: panel[key] for key in ROW_KEYS}
            continue
        for key in LEGACY_PANEL_KEYS:
            del panel[key]
        for target in panel["targets"]:
            for key in LEGACY_TARGET_KEYS:
                del target[key]
        if panel["type"] == "table":
            for key in LEGACY_TABLE_KEYS:
                del panel[key]
            del panel["fieldConfig"]["defaults"]["custom"]["displayMode"]  # now cellOptions
        legend = panel["options"].get("legend")
        if legend is not None:
            legend["showLegend"] = True
    return without_nulls(model)


def slo_limits(slo_file: Path = DEFAULT_SLO) -> Limits:
    try:
        return limits(load_thresholds(slo_file), str(slo_file))
    except ConfigError as exc:
        raise LabError(str(exc)) from None


def render(build: Callable, slo_file: Path = DEFAULT_SLO) -> dict:
    """The dashboard as Grafana's JSON model (plain dicts and lists), in the current schema."""
    model = build(slo_limits(slo_file)).to_json_data()
    return current_schema(json.loads(json.dumps(model, cls=DashboardEncoder)))


def render_all(slo_file: Path = DEFAULT_SLO) -> dict[str, str]:
    """File name -> the JSON text `lab dashboards` writes."""
    return {
        name: json.dumps(render(build, slo_file), indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def render_rules(slo_file: Path = DEFAULT_SLO) -> str:
    """The text of prometheus/rules/slo.yml: the alert rules of the SLO file's objectives."""
    try:
        return alerts.render(load_thresholds(slo_file).objectives)
    except ConfigError as exc:
        raise LabError(str(exc)) from None


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


def write(out: Path, rules_out: Path = DEFAULT_RULES, slo_file: Path = DEFAULT_SLO) -> list[Path]:
    files = {out / name: (text, "pass --out DIR") for name, text in render_all(slo_file).items()}
    files[rules_out / alerts.FILE] = (render_rules(slo_file), "pass --rules DIR")
    for path, (text, fix) in files.items():
        write_atomic(path, text, fix=fix)
    return list(files)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "dashboards",
        help="write the Grafana dashboards as JSON and the SLO alert rules",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"folder to write into (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--rules",
        type=Path,
        default=DEFAULT_RULES,
        help=f"folder of Prometheus' rule files to write {alerts.FILE} into (default: {DEFAULT_RULES})",
    )
    parser.add_argument(
        "--slo-file",
        type=Path,
        default=DEFAULT_SLO,
        help=f"the SLO file to take thresholds from (default: {DEFAULT_SLO})",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    for folder, option in ((args.out.parent, "--out DIR"), (args.rules, "--rules DIR")):
        if not folder.is_dir():
            raise LabError(
                f"{folder} is not a folder: run `lab dashboards` from the Load Lab checkout or pass {option}"
            )
    if not args.slo_file.is_file():
        raise LabError(
            f"{args.slo_file} does not exist: run `lab dashboards` from the Load Lab checkout or pass --slo-file FILE"
        )
    check_writable(args.out, fix="pass --out DIR")
    check_writable(args.rules, fix="pass --rules DIR")
    for path in write(args.out, args.rules, args.slo_file):
        print(path)
    return 0
