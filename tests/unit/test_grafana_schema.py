"""The generated dashboards against Grafana's own definitions, at the version of the pinned image:
the JSON Schema generated from @grafana/schema (tests/grafana/dashboard.schema.json) and the unit,
reducer, matcher and transformation ids of @grafana/data (tests/grafana/registries.json).
Both come from tests/grafana/generate.sh; Grafana shows an unknown unit as literal text rather than
failing, so only a check like this one notices a misspelling."""

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest

from lab import dashboards

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "tests" / "grafana"
SCHEMA = json.loads((GRAFANA / "dashboard.schema.json").read_text())
REGISTRIES = json.loads((GRAFANA / "registries.json").read_text())
# Panel type -> its definition in the schema.
PANEL_TYPES = {"timeseries": "TimeSeriesPanel", "stat": "StatPanel", "table": "TablePanel", "row": "RowPanel"}
MODELS = {name: dashboards.render(build) for name, build in dashboards.DASHBOARDS.items()}


def validator(definition: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator({**SCHEMA, "$ref": f"#/definitions/{definition}"})


def where(error: jsonschema.ValidationError, prefix: str) -> str:
    return "/".join([prefix, *map(str, error.absolute_path)])


def custom_property_errors(panel: dict, definition: str, at: str) -> list[str]:
    """Override properties "custom.<key>" against the panel's own field config (the schema can only
    say that such ids start with "custom.")."""
    custom = SCHEMA["definitions"][definition]["properties"]["fieldConfig"]["properties"]["defaults"]
    custom = custom["properties"]["custom"]
    errors = []
    for i, override in enumerate(panel.get("fieldConfig", {}).get("overrides", [])):
        for j, prop in enumerate(override["properties"]):
            key = prop["id"].removeprefix("custom.")
            if key == prop["id"]:
                continue
            here = f"{at}/fieldConfig/overrides/{i}/properties/{j}"
            if key not in custom.get("properties", {}):
                errors.append(f"{here}: {prop['id']!r} is not a field option of a {panel['type']} panel")
                continue
            check = jsonschema.Draft7Validator({**SCHEMA, **custom["properties"][key]})
            errors += [f"{here}/value: {e.message}" for e in check.iter_errors(prop.get("value"))]
    return errors


def registry_errors(panel: dict, at: str) -> list[str]:
    """Every unit, reducer, field matcher and transformation id the panel names, in @grafana/data."""
    named = []  # (registry, id, where)
    field_config = panel.get("fieldConfig", {})
    if "unit" in field_config.get("defaults", {}):
        named.append(("units", field_config["defaults"]["unit"], f"{at}/fieldConfig/defaults/unit"))
    for i, override in enumerate(field_config.get("overrides", [])):
        named.append(("fieldMatchers", override["matcher"]["id"], f"{at}/fieldConfig/overrides/{i}/matcher"))
        named += [
            ("units", prop["value"], f"{at}/fieldConfig/overrides/{i}/properties/{j}")
            for j, prop in enumerate(override["properties"])
            if prop["id"] == "unit"
        ]
    options = panel.get("options", {})
    for path, calcs in (
        ("options/reduceOptions/calcs", options.get("reduceOptions", {}).get("calcs", [])),
        ("options/legend/calcs", options.get("legend", {}).get("calcs", [])),
        ("options/footer/reducer", options.get("footer", {}).get("reducer", [])),
    ):
        named += [("reducers", calc, f"{at}/{path}") for calc in calcs]
    for i, transformation in enumerate(panel.get("transformations", [])):
        named.append(("transformations", transformation["id"], f"{at}/transformations/{i}"))
    # An empty unit is no unit.
    return [
        f"{here}: {value!r} is not one of Grafana's {registry}"
        for registry, value, here in named
        if value not in REGISTRIES[registry] and not (registry == "units" and value == "")
    ]


def errors(model: dict) -> list[str]:
    """Everything in the dashboard that Grafana's definitions do not have, one line each."""
    found = [where(e, "") + f": {e.message}" for e in validator("LabDashboard").iter_errors(model)]
    if found:
        # The dashboard's schema lists the panel types as alternatives: say which part of which panel.
        found = [line for line in found if not line.startswith("/panels/")]
    for i, panel in enumerate(model.get("panels", [])):
        at = f"/panels/{i}"
        definition = PANEL_TYPES.get(panel.get("type"))
        if definition is None:
            found.append(
                f"{at}/type: {panel.get('type')!r} is not a panel type the lab uses ({', '.join(PANEL_TYPES)})"
            )
            continue
        found += [f"{where(e, at)}: {e.message}" for e in validator(definition).iter_errors(panel)]
        if panel["type"] == "row":
            continue
        found += custom_property_errors(panel, definition, at)
        found += registry_errors(panel, at)
    return found


def test_the_schema_is_of_the_pinned_grafana():
    pinned = re.search(r"grafana/grafana:([\d.]+)", (ROOT / "docker-compose.load-test.yml").read_text())
    assert pinned, "docker-compose.load-test.yml pins no grafana/grafana:<version>"
    for generated in (SCHEMA, REGISTRIES):
        assert f" {pinned[1]};" in generated["$comment"], (
            "run tests/grafana/generate.sh after changing the pin"
        )


@pytest.mark.parametrize("model", MODELS.values(), ids=list(MODELS))
def test_dashboard_follows_grafanas_schema_and_registries(model):
    assert errors(model) == []


def first(model: dict, panel_type: str) -> dict:
    return next(panel for panel in model["panels"] if panel["type"] == panel_type)


def misspell_type(model):
    first(model, "timeseries")["type"] = "timeseris"


def misspell_option(model):
    options = first(model, "stat")["options"]
    options["textMod"] = options.pop("textMode")


def misspell_legend_key(model):
    legend = first(model, "timeseries")["options"]["legend"]
    legend["placment"] = legend.pop("placement")


def invalid_color_mode(model):
    first(model, "stat")["options"]["colorMode"] = "backgroud"


def wrong_override_property(model):
    override = first(model, "timeseries")["fieldConfig"]["overrides"][0]
    override["properties"][0]["id"] = "custom.axisPlacment"


def wrong_override_value(model):
    override = first(model, "timeseries")["fieldConfig"]["overrides"][0]
    override["properties"][0] = {"id": "custom.axisPlacement", "value": "rigth"}


def unknown_override_id(model):
    first(model, "timeseries")["fieldConfig"]["overrides"][0]["properties"].append(
        {"id": "unitt", "value": "s"}
    )


def misspell_unit(model):
    first(model, "stat")["fieldConfig"]["defaults"]["unit"] = "reqsp"


def misspell_override_unit(model):
    first(model, "table")["fieldConfig"]["overrides"][0]["properties"][1]["value"] = "reqsp"


def misspell_reducer(model):
    first(model, "stat")["options"]["reduceOptions"]["calcs"] = ["lastNotNul"]


def misspell_matcher(model):
    first(model, "table")["fieldConfig"]["overrides"][0]["matcher"]["id"] = "byNam"


def misspell_transformation(model):
    first(model, "table")["transformations"][0]["id"] = "merg"


def target_leftover(model):
    first(model, "stat")["targets"][0]["step"] = 10


def null_option(model):
    first(model, "timeseries")["maxDataPoints"] = None


@pytest.mark.parametrize(
    "breakage",
    [
        misspell_type,
        misspell_option,
        misspell_legend_key,
        invalid_color_mode,
        wrong_override_property,
        wrong_override_value,
        unknown_override_id,
        misspell_unit,
        misspell_override_unit,
        misspell_reducer,
        misspell_matcher,
        misspell_transformation,
        target_leftover,
        null_option,
    ],
)
def test_a_broken_copy_fails(breakage):
    model = copy.deepcopy(MODELS[dashboards.OVERVIEW_FILE])
    breakage(model)
    assert errors(model), f"{breakage.__name__} went unnoticed"


def test_a_misspelled_panel_type_fails_the_schema_itself():
    model = copy.deepcopy(MODELS[dashboards.OVERVIEW_FILE])
    misspell_type(model)
    assert not validator("LabDashboard").is_valid(model)
