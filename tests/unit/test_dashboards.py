"""The generated dashboards: committed as generated, well-formed, readable, and only querying the contract."""

import json
import re
from pathlib import Path

import pytest
import yaml

from lab import dashboards
from lab.cli import main
from lab.core import slo
from lab.dashboards.panels import DATASOURCE_UID, GRID_COLUMNS, SATURATED, SCHEMA_VERSION
from tests.support.local_services import promtool

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "grafana" / "dashboards"
PROVISIONING = ROOT / "grafana" / "provisioning"
# Grafana's built-in variables the dashboards may use.
BUILTINS = {"__rate_interval", "__interval", "__range"}
MODELS = {name: dashboards.render(build) for name, build in dashboards.DASHBOARDS.items()}


def all_models():
    return pytest.mark.parametrize("model", MODELS.values(), ids=list(MODELS))


def content_panels(model: dict) -> list[dict]:
    return [p for p in model["panels"] if p["type"] != "row"]


def test_committed_json_is_what_the_code_generates():
    generated = dashboards.render_all()
    committed = {path.name: path.read_text() for path in COMMITTED.glob("*.json")}
    assert sorted(committed) == sorted(generated), "run `lab dashboards` and commit grafana/dashboards"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: run `lab dashboards` and commit it"


def test_cli_writes_every_dashboard_and_the_slo_rules(tmp_path):
    (tmp_path / "rules").mkdir()
    assert main(["dashboards", "--out", str(tmp_path / "out"), "--rules", str(tmp_path / "rules")]) == 0
    written = {path.name: path.read_text() for path in (tmp_path / "out").iterdir()}
    assert written == dashboards.render_all()
    assert (tmp_path / "rules" / "slo.yml").read_text() == dashboards.render_rules()


def test_cli_takes_thresholds_from_the_slo_file(tmp_path):
    slo_file = tmp_path / "slo.yaml"
    text = (ROOT / "locust" / "slo.yaml").read_text()
    slo_file.write_text(text.replace("max: 0.01", "max: 0.02").replace("max: 250ms", "max: 100ms"))
    (tmp_path / "rules").mkdir()
    args = ["--out", str(tmp_path / "out"), "--rules", str(tmp_path / "rules"), "--slo-file", str(slo_file)]
    assert main(["dashboards", *args]) == 0
    overview = json.loads((tmp_path / "out" / dashboards.OVERVIEW_FILE).read_text())
    assert {0.02, 0.1} <= set(threshold_values(overview)) and 0.01 not in threshold_values(overview)
    rules = (tmp_path / "rules" / "slo.yml").read_text()
    assert "(14.4 * 0.02)" in rules and 'le="0.1"' in rules and 'le="0.25"' not in rules


def test_cli_names_a_soak_limit_missing_from_the_slo_file(tmp_path, capsys):
    slo_file = tmp_path / "slo.yaml"
    text = (ROOT / "locust" / "slo.yaml").read_text()
    slo_file.write_text(text.replace("  max_p95_slope_seconds_per_hour: 0.05\n", ""))
    (tmp_path / "rules").mkdir()
    args = ["--out", str(tmp_path / "out"), "--rules", str(tmp_path / "rules"), "--slo-file", str(slo_file)]
    assert main(["dashboards", *args]) == 2
    assert "soak: set max_p95_slope_seconds_per_hour" in capsys.readouterr().err


def threshold_values(model: dict) -> list[float]:
    """Every threshold step value in the dashboard: panel defaults and overrides."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            if value.get("mode") == "absolute" and "steps" in value:
                found.extend(step["value"] for step in value["steps"] if step["value"] is not None)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(model)
    return found


# Locust's own warning level for a worker's CPU, and where a resource of the System dashboard counts as
# saturated: not service level objectives.
WORKER_CPU_WARNING = 0.9


@all_models()
def test_every_threshold_shown_is_one_of_slo_yaml(model):
    thresholds = slo.load_thresholds(ROOT / "locust" / "slo.yaml")
    allowed = (
        {o.threshold for o in thresholds.objectives}
        | set(thresholds.soak.values())
        | {WORKER_CPU_WARNING, SATURATED}
    )
    shown = threshold_values(model)
    assert shown and set(shown) <= allowed, set(shown) - allowed


def test_soak_drift_limits_are_slo_yamls():
    soak = slo.load_thresholds(ROOT / "locust" / "slo.yaml").soak
    panels = {p["title"]: p for p in MODELS["soak.json"]["panels"]}
    for title, key in [
        ("p95 drift per hour", "max_p95_slope_seconds_per_hour"),
        ("Error ratio drift per hour", "max_error_ratio_slope_per_hour"),
        ("API memory growth per hour", "max_api_memory_slope_bytes_per_hour"),
        ("Locust master memory growth per hour", "max_locust_memory_slope_bytes_per_hour"),
    ]:
        assert threshold_values(panels[title]) == [soak[key]], title


def test_cli_names_a_missing_parent_folder(tmp_path, capsys):
    assert main(["dashboards", "--out", str(tmp_path / "nowhere" / "dashboards")]) == 2
    error = capsys.readouterr().err
    assert "nowhere is not a folder" in error and "--out DIR" in error


def test_uids_are_fixed_and_distinct():
    uids = [model["uid"] for model in MODELS.values()]
    assert uids == ["loadlab-overview", "loadlab-sut", "loadlab-system", "loadlab-capacity", "loadlab-soak"]
    assert all(len(uid) <= 40 for uid in uids)  # Grafana's limit


@all_models()
def test_schema_version_is_current(model):
    assert model["schemaVersion"] == SCHEMA_VERSION >= 41
    assert not set(dashboards.LEGACY_KEYS) & set(model) and "time_options" not in model["timepicker"]


@all_models()
def test_panel_ids_are_unique(model):
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids)) and None not in ids


@all_models()
def test_panels_fit_the_grid_without_overlapping(model):
    taken: dict[tuple[int, int], str] = {}
    for panel in model["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["y"] >= 0 and pos["x"] + pos["w"] <= GRID_COLUMNS, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = panel["title"]


@all_models()
def test_panels_are_readable_on_a_1920x1080_screen(model):
    # 24 columns over ~1900 px: 4 columns is ~320 px, enough for a stat; graphs and tables get 6 or more.
    # Height units are 30 px: 5 is the least for a stat, 7 for a graph with a legend.
    for panel in content_panels(model):
        pos, kind = panel["gridPos"], panel["type"]
        least = (4, 5) if kind == "stat" else (6, 7)
        assert pos["w"] >= least[0] and pos["h"] >= least[1], f"{panel['title']!r} is {pos['w']}x{pos['h']}"
        assert pos["h"] <= 12, f"{panel['title']!r} is taller than a third of the screen"


def test_capacity_dashboard_reads_from_across_a_room():
    capacity = MODELS["capacity.json"]
    stats = [p for p in capacity["panels"] if p["type"] == "stat"]
    assert len(stats) >= 3
    for panel in stats:
        assert panel["gridPos"]["w"] >= 6 and panel["gridPos"]["h"] >= 6, panel["title"]
        assert panel["options"]["graphMode"] == "none", "a sparkline is noise on a projector"
        assert len(panel["title"]) <= 40


def provisioned_datasource() -> dict:
    config = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (datasource,) = config["datasources"]
    return datasource


def test_provisioned_datasource_is_the_default_prometheus_with_a_stable_uid():
    datasource = provisioned_datasource()
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["type"] == "prometheus" and datasource["isDefault"] is True
    assert datasource["url"] == "http://prometheus:9090"


@all_models()
def test_every_query_uses_the_provisioned_datasource(model):
    expected = {"type": "prometheus", "uid": provisioned_datasource()["uid"]}
    for panel in content_panels(model):
        assert panel["datasource"] == expected, panel["title"]
        assert panel["targets"], f"{panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == expected, panel["title"]
    for variable in model["templating"]["list"]:
        assert variable["datasource"] == expected, variable["name"]
    for annotation in model["annotations"]["list"]:
        assert annotation["datasource"] == expected, annotation["name"]


def test_dashboards_provider_serves_the_generated_folder_read_only():
    config = yaml.safe_load((PROVISIONING / "dashboards" / "lab.yml").read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file" and provider["allowUiUpdates"] is False
    assert provider["options"]["path"] == dashboards.CONTAINER_DIR
    assert (COMMITTED / dashboards.OVERVIEW_FILE).exists()
    assert MODELS[dashboards.OVERVIEW_FILE]["uid"] == "loadlab-overview"


def used_variables(model: dict) -> list[tuple[str, str]]:
    """(where, variable name) for every variable referenced in queries, titles, legends and annotations."""
    texts = [(f"title {model['title']!r}", model["title"])]
    for panel in model["panels"]:
        texts.append((f"panel {panel['title']!r}", panel["title"]))
        for target in panel.get("targets", []):
            texts += [(f"panel {panel['title']!r}", target["expr"]), (panel["title"], target["legendFormat"])]
    for annotation in model["annotations"]["list"]:
        texts += [(f"annotation {annotation['name']!r}", annotation[key]) for key in ("expr", "titleFormat")]
    for variable in model["templating"]["list"]:
        texts.append((f"variable {variable['name']!r}", variable["query"]))
    return [
        (where, next(group for group in match.groups() if group))
        for where, text in texts
        for match in dashboards.VARIABLE.finditer(text)
    ]


@all_models()
def test_every_variable_used_is_defined(model):
    defined = {variable["name"] for variable in model["templating"]["list"]} | BUILTINS
    undefined = [(where, name) for where, name in used_variables(model) if name not in defined]
    assert not undefined
    assert ("panel 'Users'", "run_id") in used_variables(MODELS[dashboards.OVERVIEW_FILE])


def test_run_variable_lists_runs_newest_first():
    (variable,) = MODELS[dashboards.OVERVIEW_FILE]["templating"]["list"]
    assert variable["name"] == "run_id" and variable["query"] == "label_values(locust_run_info, run_id)"
    assert variable["sort"] == 2  # alphabetical descending: run ids start with their UTC start time


def test_overview_annotates_run_start_stop_and_stages():
    names = [a["name"] for a in MODELS[dashboards.OVERVIEW_FILE]["annotations"]["list"]]
    assert names == ["Run start", "Run stopped", "Shape stage", "Worker lost"]


@all_models()
def test_range_vectors_follow_the_time_range(model):
    # A fixed window ([5m]) is too coarse for a 5-minute test and too noisy for a 6-hour soak.
    for panel in content_panels(model):
        for target in panel["targets"]:
            for window in re.findall(r"\[([^\]]*)\]", target["expr"]):
                assert window in ("$__rate_interval", "$__range", "$__range:"), (
                    f"{panel['title']!r}: [{window}]"
                )


def contract_metrics() -> set[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    return set(re.findall(r"`([a-zA-Z_][a-zA-Z0-9_]*)`", text.split("## Metric contract", 1)[1]))


def recorded_metrics() -> set[str]:
    rules = yaml.safe_load((ROOT / "prometheus" / "rules" / "recording.yml").read_text())
    return {rule["record"] for group in rules["groups"] for rule in group["rules"]}


def test_queries_only_read_the_metric_contract_and_recorded_series():
    allowed = contract_metrics() | recorded_metrics()
    histograms = {f"{name}_{suffix}" for name in allowed for suffix in ("bucket", "count", "sum")}
    unknown = set()
    for query in dashboards.panel_queries("r"):
        for metric in re.findall(r"([a-zA-Z_:][\w:]*)\{", query.expr):
            if metric not in allowed | histograms and not metric.startswith("process_"):
                unknown.add((query.panel, metric))
    assert not unknown


def test_panel_queries_cover_every_target_with_variables_filled_in():
    queries = list(
        dashboards.panel_queries("20261121T193000Z-baseline", rate_interval="2m", range_seconds=600)
    )
    count = sum(len(p.get("targets", [])) for model in MODELS.values() for p in model["panels"])
    assert len(queries) == count
    assert not [q for q in queries if "$" in q.expr]
    users = next(q for q in queries if q.dashboard == "loadlab-overview" and q.panel == "Users")
    assert users.expr == 'sum(locust_users{run_id="20261121T193000Z-baseline"})'
    table = [q for q in queries if q.panel == "Per endpoint"]
    assert all(q.instant and ("[600s]" in q.expr or "[600s:]" in q.expr) for q in table)
    assert any("[2m]" in q.expr for q in queries)


def test_substitute_rejects_an_unknown_variable():
    assert dashboards.substitute('a{x=~"${job}"}[[job]] $job', {"job": "api"}) == 'a{x=~"api"}api api'
    with pytest.raises(KeyError, match=r"\$instance"):
        dashboards.substitute('up{instance="$instance"}', {})


@pytest.mark.integration
def test_every_panel_query_parses_as_promql():
    """promtool (from the lab's Prometheus image) parses each query, variables filled in, as a recording
    rule's expression."""
    rules = [
        {"record": f"panel_{i}", "expr": query.expr} for i, query in enumerate(dashboards.panel_queries("r"))
    ]
    panels = json.dumps({"groups": [{"name": "panels", "rules": rules}]})
    result = promtool("check", "rules", "panels.yml", files={"panels.yml": panels})
    assert result.returncode == 0, result.stdout + result.stderr


@all_models()
def test_table_columns_name_the_fields_grafana_makes(model):
    # A table query's value field is "Value", or "Value #<refId>" when the panel has several queries.
    for panel in (p for p in model["panels"] if p["type"] == "table"):
        refs = [target["refId"] for target in panel["targets"]]
        fields = {"Value"} if len(refs) == 1 else {f"Value #{ref}" for ref in refs}
        assert {o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]} == fields, panel["title"]
        assert all(t["instant"] and t["format"] == "table" for t in panel["targets"]), panel["title"]


def test_rate_interval_knows_the_scrape_interval():
    # Grafana's $__rate_interval is at least four scrape intervals of the datasource's timeInterval.
    prometheus = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    assert provisioned_datasource()["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]


@all_models()
def test_dashboards_link_to_each_other_keeping_run_and_time(model):
    (link,) = model["links"]
    assert link["tags"] == ["loadlab"] and link["includeVars"] and link["keepTime"]
    assert "loadlab" in model["tags"]
