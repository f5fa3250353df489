"""`lab report` on fixed Prometheus responses: figures, report.json, and an HTML page that embeds its plots.

The Prometheus client is tested against a real HTTP server on loopback that answers fixed bodies.
"""

import base64
import json
import socket
import threading
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from markupsafe import escape

from lab import report
from lab.core import conventions, limits
from lab.core.errors import LabError
from lab.core.prometheus import Prometheus, label_value
from lab.core.runrecord import RunRecord
from lab.report import html as report_html
from lab.report import plots as report_plots

START, END = 1_700_000_000.0, 1_700_000_060.0
RUN_ID = "20231114T221320Z-baseline"
LES = ("0.01", "0.05", "0.1", "0.5", "+Inf")


def vector(rows):
    """An instant-query result: rows of (labels, value)."""
    return [{"metric": labels, "value": [END + 30, str(value)]} for labels, value in rows]


def matrix(rows, times=range(int(START), int(END) + 1, 5)):
    """A range-query result: rows of (labels, function of t)."""
    return [{"metric": labels, "values": [[t, str(f(t))] for t in times]} for labels, f in rows]


def responses(scale=1.0):
    """What Prometheus answers for a 60 s run: GET /items (100 requests) and POST /login (20, 2 failed)."""
    data = {
        "users": matrix([({}, lambda t: min(10, (t - START) / 2))]),
        # The run's counters grow evenly from 0 at START to the final counts at END.
        "cumulative_requests": matrix([({}, lambda t: 120 * scale * (t - START) / 60)]),
        "cumulative_failures": matrix([({}, lambda t: 2 * scale * (t - START) / 60)]),
        "cumulative_buckets": matrix(
            [
                ({"le": le}, lambda t, n=n: n * scale * (t - START) / 60)
                for le, n in zip(LES, (10, 50, 99, 118, 120), strict=True)
            ]
        ),
        "api_latency_buckets": matrix(
            [({"le": le}, lambda t, n=n: n / 60) for le, n in zip(LES, (60, 110, 118, 120, 120), strict=True)]
        ),
        "api_rps": matrix([({}, lambda t: 2.0)]),
        "api_5xx_rate": [],  # none: Prometheus returns an empty result for sum() of nothing
        "api_rss": matrix([({}, lambda t: 80e6 + (t - START) * 1000)]),
        "locust_rss": matrix([({}, lambda t: 60e6)]),
        "pg_xact_rate": matrix([({}, lambda t: 40.0)]),
        "pg_connections": matrix([({}, lambda t: 6)]),
        "redis_commands_rate": matrix([({}, lambda t: 25.0)]),
        "redis_memory": matrix([({}, lambda t: 2e6)]),
        # A closed run: the open model's series do not exist (open_model_responses has them).
        **dict.fromkeys(
            (
                "arrival_rate",
                "cumulative_arrivals",
                "cumulative_dropped",
                "cumulative_started",
                "intended_buckets",
            ),
            [],
        ),
    }
    run = RunRecord(run_id=RUN_ID, scenario="baseline", host="", started_at=START, ended_at=END)
    # The demo stack: nothing scraped from TARGET_METRICS.
    data |= {name: [] for name in report.queries(run) if name.startswith("target_")}
    assert set(data) == set(report.queries(run))
    return data


DEMO_SERIES = ("api_", "pg_", "redis_")


def own_api_responses(convention="otel_ms"):
    """Your own API instead of the demo: no api/Postgres/Redis series; the target job's histogram in
    `convention`'s names (the same counts as the demo API's, in milliseconds for otel_ms) and process_*."""
    data = {name: [] if name.startswith(DEMO_SERIES) else value for name, value in responses().items()}
    unit = 1000 if convention == "otel_ms" else 1
    data[f"target_latency_buckets.{convention}"] = matrix(
        [
            ({"le": le if le == "+Inf" else f"{float(le) * unit:g}"}, lambda t, n=n: n / 60)
            for le, n in zip(LES, (60, 110, 118, 120, 120), strict=True)
        ]
    )
    data[f"target_rps.{convention}"] = matrix([({}, lambda t: 2.0)])
    data[f"target_5xx_rate.{convention}"] = matrix([({}, lambda t: 0.5)])
    data["target_cpu"] = matrix([({}, lambda t: 0.25 + 0.5 * (t >= START + 30))])
    data["target_rss"] = matrix([({}, lambda t: 50e6)])
    return data


STATS_CSV = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,/items,100,0,50,60.5,3,400,120,1.7,0.0,50,60,70,80,90,98,300,400,400,400,400
POST,/login,20,2,200,210.0,40,800,80,0.34,0.03,200,210,220,230,300,480,800,800,800,800,800
,Aggregated,120,2,50,85.4,3,800,113,2.0,0.03,50,70,80,90,200,300,480,480,800,800,800
"""
FAILURES_CSV = """\
Method,Name,Error,Occurrences
POST,/login,HTTPError('401 Client Error'),2
"""


def make_run(folder, scenario="baseline", run_id=RUN_ID):
    """A run's record, with Locust's CSVs of GET /items (100 requests) and POST /login (20, 2 failed)."""
    (folder / "locust_stats.csv").write_text(STATS_CSV)
    (folder / "locust_failures.csv").write_text(FAILURES_CSV)
    return RunRecord(
        run_id=run_id,
        scenario=scenario,
        host="http://api:8000",
        started_at=START,
        ended_at=END,
        folder=folder,
    )


# The soak limits of the lab's own SLO file, without its objectives.
SLO_FILE = Path(__file__).resolve().parents[2] / "locust" / "slo.yaml"
THRESHOLDS = {**report.load_thresholds(SLO_FILE), "objectives": []}


def test_whole_run_figures_are_locusts_own_from_the_runs_csv(tmp_path):
    built = report.build(make_run(tmp_path), responses(), {}, THRESHOLDS)
    summary = built["summary"]
    assert summary["requests"] == 120 and summary["failures"] == 2
    assert summary["requests_per_second"] == pytest.approx(2.0)  # over the run's 60 s
    assert summary["error_ratio"] == pytest.approx(2 / 120)
    assert summary["peak_users"] == 10
    assert (summary["p50_seconds"], summary["p95_seconds"], summary["p99_seconds"]) == (0.05, 0.3, 0.48)
    login = built["endpoints"]["POST /login"]
    assert login["requests"] == 20 and login["error_ratio"] == pytest.approx(0.1)
    assert login["p99_seconds"] == 0.8
    assert built["errors"] == [
        {"endpoint": "POST /login", "error": "HTTPError('401 Client Error')", "count": 2}
    ]
    assert "10, 50, 100, 500" in built["percentile_method"]
    assert built["time_series_missing"] is None
    assert built["soak"] is None and built["capacity"] is None
    server = built["server"]
    assert server["api_requests_per_second_mean"] == pytest.approx(2.0)
    assert server["postgres_connections_max"] == 6 and server["api_5xx_per_second_mean"] is None
    assert server["api_p95_seconds_max"] == pytest.approx(0.05 + 0.05 * (114 - 110) / 8)


def test_over_time_series_for_the_plots(tmp_path):
    built = report.build(make_run(tmp_path), responses(), {}, THRESHOLDS)
    series = built["series"]
    # 5 s intervals from START; each point is placed at the end of its interval.
    assert [t for t, _ in series["rps"]] == [START + 5 * k for k in range(1, 13)]
    assert all(v == pytest.approx(2.0) for _, v in series["rps"])
    assert all(v == pytest.approx(2 / 120) for _, v in series["error_ratio"])
    # Every interval has the whole run's distribution here (overall buckets 0.01: 10, 0.05: 50,
    # 0.1: 99, 0.5: 118, +Inf: 120), so the same p95: rank 114 lies in (0.1, 0.5].
    p95 = 0.1 + 0.4 * (114 - 99) / 19
    assert all(v == pytest.approx(p95) for _, v in series["latency"][0.95])
    assert series["api_latency"][0.5][0] == (START, pytest.approx(0.01 * 60 / 60))
    assert series["api_5xx_rate"] == []


def test_the_demo_stacks_server_side_has_its_three_sections_and_no_target(tmp_path):
    built = report.build(make_run(tmp_path), responses(), {}, THRESHOLDS)
    assert built["server_sections"] == ["api", "postgres", "redis"]
    assert built["server"]["target_convention"] is None and built["server"]["target_cpu_cores_mean"] is None
    rows = [row[0] for row in report_html._server_rows(built["server"])]
    assert "API requests/s, mean" in rows and not any(row.startswith("Your API") for row in rows)


@pytest.mark.parametrize("convention", ["otel_ms", "otel", "instrumentator"])
def test_your_own_api_is_shown_in_its_convention_and_the_demo_sections_left_out(tmp_path, convention):
    built = report.build(make_run(tmp_path), own_api_responses(convention), {}, THRESHOLDS)
    assert built["server_sections"] == ["target"]
    server = built["server"]
    assert server["target_convention"] == next(c.name for c in conventions.CONVENTIONS if c.key == convention)
    assert server["target_requests_per_second_mean"] == pytest.approx(2.0)
    assert server["target_5xx_per_second_mean"] == pytest.approx(0.5)
    # The same counts as the demo API's histogram: the same p95 in seconds, whatever the unit.
    assert server["target_p95_seconds_max"] == pytest.approx(0.05 + 0.05 * (114 - 110) / 8)
    assert server["target_cpu_cores_max"] == pytest.approx(0.75)
    assert 0.25 < server["target_cpu_cores_mean"] < 0.75
    assert server["target_resident_memory_bytes_max"] == 50e6
    assert server["api_requests_per_second_mean"] is None and server["postgres_connections_max"] is None
    page = render(built)
    rows = [row[0] for row in report_html._server_rows(server)]
    assert rows[:3] == ["Your API requests/s, mean", "Your API 5xx/s, mean", "Your API p95, highest"]
    assert not any(row.startswith(("API ", "Postgres", "Redis")) for row in rows)
    assert "Server side over the same time axis" in parse_page(page).headings
    assert len(parse_page(page).images) == 2  # the client's plot and the server side's


def test_endpoints_with_only_process_series_show_cpu_and_memory_and_say_so(tmp_path):
    data = own_api_responses()
    data = {
        name: [] if name.startswith(("target_rps", "target_5xx", "target_latency")) else v
        for name, v in data.items()
    }
    built = report.build(make_run(tmp_path), data, {}, THRESHOLDS)
    assert built["server_sections"] == ["target"] and built["server"]["target_convention"] is None
    assert "export no HTTP request histogram the lab recognises" in render(built)


def test_without_any_server_side_source_no_server_plot_is_drawn(tmp_path):
    data = {name: [] if name.startswith(DEMO_SERIES) else value for name, value in responses().items()}
    built = report.build(make_run(tmp_path), data, {}, THRESHOLDS)
    assert built["server_sections"] == []
    assert [plot["id"] for plot in report_plots.draw(built)] == ["client"]
    page = render(built)
    assert "No server-side metrics in this window" in page and "set TARGET_METRICS" in page
    assert len(parse_page(page).images) == 1


def test_without_time_series_the_report_has_its_figures_and_says_what_is_missing(tmp_path):
    built = report.build(make_run(tmp_path), None, {"slo": SLO}, THRESHOLDS, "Prometheus is unreachable at X")
    assert built["summary"]["requests"] == 120 and built["summary"]["peak_users"] is None
    assert built["time_series_missing"].startswith(
        "The time series are missing: Prometheus is unreachable at X."
    )
    assert built["series"]["rps"] == [] and built["server"]["api_p95_seconds_max"] is None
    html = render(built)
    assert "The time series are missing" in html
    empty = {name: [] for name in report.queries(make_run(tmp_path))}
    missing = report.build(make_run(tmp_path), empty, {}, THRESHOLDS)["time_series_missing"]
    assert f"Prometheus has no Locust samples of run {RUN_ID}" in missing


class ImageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.scripts, self.headings = [], [], [], []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag in ("link", "script") or (tag == "img" and not attrs["src"].startswith("data:")):
            self.links.append(attrs)
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)
            self._in_h2 = False


def parse_page(html):
    parser = ImageParser()
    parser.feed(html)
    parser.close()
    return parser


def render(built):
    return report_html.render(built, report_plots.draw(built))


def test_html_is_self_contained_and_embeds_png_plots(tmp_path):
    built = report.build(make_run(tmp_path), responses(), {}, THRESHOLDS)
    page = parse_page(render(built))
    assert page.links == []  # no external stylesheet, script or image
    assert len(page.images) == 2
    for src in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix) :]).startswith(b"\x89PNG\r\n\x1a\n")
    assert "Per endpoint" in page.headings and "How the figures were computed" in page.headings


SLO = {
    "objectives": [
        {"objective": "p95", "metric": "latency_p95", "passed": True, "value": 0.2, "threshold": 0.5,
         "bound": "max", "unit": "seconds", "requests": 120},
        {"objective": "errors", "metric": "error_ratio", "passed": False, "value": 0.0167, "threshold": 0.01,
         "bound": "max", "unit": "ratio", "requests": 120},
    ]
}  # fmt: skip


def test_slo_verdicts_are_shown(tmp_path):
    html = render(report.build(make_run(tmp_path), responses(), {"slo": SLO}, THRESHOLDS))
    assert "SLOs: 1 of 2 met (failed: errors)" in html
    assert "&le; 500.0 ms" in html and "1.67%" in html


def objectives(tmp_path):
    slo_file = tmp_path / "slo.yaml"
    slo_file.write_text(
        "objectives:\n  p95:\n    metric: latency_p95\n    max: 500ms\n"
        "  errors:\n    metric: error_ratio\n    max: 0.01\n"
        "soak:\n  max_p95_slope_seconds_per_hour: 0.02\n"
    )
    return report.load_thresholds(slo_file)


def test_thresholds_come_from_the_slo_file_and_a_soak_limit_it_does_not_set_is_not_judged(tmp_path):
    thresholds = objectives(tmp_path)
    assert thresholds["soak"] == {"max_p95_slope_seconds_per_hour": 0.02}
    assert thresholds["source"] == str(tmp_path / "slo.yaml")
    assert report.load_thresholds(tmp_path / "missing.yaml") == {
        "objectives": [],
        "soak": {},
        "source": "no SLO file",
    }
    soak = report.build(make_run(tmp_path, "soak"), responses(), {}, thresholds)["soak"]
    judged = {c["check"]: c["passed"] for c in soak["checks"]}
    assert [name for name, passed in judged.items() if passed is not None] == ["p95 latency"]
    assert soak["verdict"] == "PASS"
    assert "none in the SLO file" in render(
        report.build(make_run(tmp_path, "soak"), responses(), {}, thresholds)
    )


def test_a_wrong_slo_file_is_a_lab_error_naming_the_line(tmp_path):
    bad = tmp_path / "slo.yaml"
    bad.write_text("objectives:\n  p95:\n    metric: latency_p95\n    max: 500ms\nsoak:\n  max_cpu: 1\n")
    with pytest.raises(LabError, match=r"slo.yaml:6: soak: unknown key 'max_cpu'"):
        report.load_thresholds(bad)


def capacity_step(users, rps, start, passed=True, breached=()):
    return {"users": users, "requests_per_second": rps, "passed": passed, "breached": list(breached),
            "started_at": start, "ended_at": start + 15, "verdicts": []}  # fmt: skip


# As lab.core.capacity writes it: the search stopped at a breach at 40 users.
CAPACITY = {
    "users": 30,
    "requests_per_second": 250.0,
    "reason": "breach",
    "min_growth": 0.25,
    "steps": [
        capacity_step(10, 100.0, START),
        capacity_step(20, 200.0, START + 15),
        capacity_step(30, 250.0, START + 30),
        capacity_step(40, 260.0, START + 45, passed=False, breached=["errors"]),
    ],
}


def capacity_responses():
    """Cumulative counts: every 15 s step adds 30 requests; the last one also 3 failures and slow ones."""
    data = responses()
    per_step = {"0.01": 10, "0.05": 25, "0.1": 30, "0.5": 30, "+Inf": 30}
    slow = {"0.01": 0, "0.05": 0, "0.1": 10, "0.5": 30, "+Inf": 30}

    def cumulative(counts_of_step):
        def at(t):
            done = min(int((t - START) // 15), 4)
            return sum(counts_of_step(k) for k in range(done))

        return at

    data["cumulative_buckets"] = matrix(
        [({"le": le}, cumulative(lambda k, le=le: slow[le] if k == 3 else per_step[le])) for le in LES]
    )
    data["cumulative_requests"] = matrix([({}, cumulative(lambda k: 30))])
    data["cumulative_failures"] = matrix([({}, cumulative(lambda k: 3 if k == 3 else 0))])
    return data


def test_capacity_run_has_the_sentence_the_knee_and_a_plot(tmp_path):
    extras = {"capacity": CAPACITY}
    built = report.build(make_run(tmp_path, "capacity"), capacity_responses(), extras, objectives(tmp_path))
    cap = built["capacity"]
    assert cap["sentence"] == (
        "At p95 under 500 ms and errors under 1%, capacity is 30 users at 250 requests/s (an objective was "
        "breached at 40 users)."
    )
    assert cap["knee"] == {"users": 30, "requests_per_second": 250.0}
    assert cap["p95_limit_seconds"] == 0.5 and cap["stopped_by"] == "breach"
    first, last = cap["steps"][0], cap["steps"][3]
    assert first["p95_seconds"] == pytest.approx(0.05 + 0.05 * (28.5 - 25) / 5) and first["error_ratio"] == 0
    assert last["p95_seconds"] == pytest.approx(0.1 + 0.4 * (28.5 - 10) / 20) and last["error_ratio"] == 0.1
    html = render(built)
    assert cap["sentence"] in html and "FAIL</span> (errors)" in html
    assert len(parse_page(html).images) == 3


def test_capacity_run_names_its_limiter_plots_every_resource_and_lists_what_it_did_not_see(tmp_path):
    measured = limits.judge(
        {
            "api_db_pool": [0.2, 0.5, 0.8, 1.0],
            "api_cpu": [0.1, 0.2, 0.25, 0.3],
            "host_cpu": [0.2, 0.3, 0.4, 0.45],
        },
        [10, 20, 30, 40],
    )
    not_seen = [{"resource": "redis_memory", "name": "Redis memory", "why": "no data from redis-exporter"}]
    extras = {"capacity": {**CAPACITY, **measured, "not_seen": not_seen}}
    built = report.build(make_run(tmp_path, "capacity"), capacity_responses(), extras, objectives(tmp_path))
    cap = built["capacity"]
    assert cap["sentence"] == (
        "At p95 under 500 ms and errors under 1%, capacity is 30 users at 250 requests/s (an objective was "
        "breached at 40 users); the API's DB pool limits it (100% of its maximum connections at 40 users); "
        "the API process's CPU 30%, the host's CPU 45%."
    )
    assert cap["limiter"]["resource"] == "api_db_pool" and not cap["at_least"]
    html = render(built)
    assert str(escape(cap["sentence"])) in html and "Redis memory (no data from redis-exporter)" in html
    assert len(parse_page(html).images) == 4


def test_a_search_that_stopped_at_its_maximum_says_at_least(tmp_path):
    search = {**CAPACITY, "users": 40, "reason": "max_users", "steps": CAPACITY["steps"][:3]}
    cap = report.capacity_section(search, objectives(tmp_path)["objectives"], capacity_responses())
    assert cap["at_least"]
    assert cap["sentence"].startswith(
        "At p95 under 500 ms and errors under 1%, capacity is at least 40 users at 250 requests/s; the search "
        "stopped at its maximum (max_users)"
    )


def test_capacity_sentence_lists_each_objective_and_its_requests(tmp_path):
    slo_file = tmp_path / "slo.yaml"
    slo_file.write_text(
        "objectives:\n  items:\n    metric: latency_p95\n    requests: 'GET /items*'\n    max: 250ms\n"
        "  login:\n    metric: latency_p99\n    requests: [POST /login, GET /me]\n    max: 1s\n"
        "  errors:\n    metric: error_ratio\n    max: 0.01\n  rate:\n    metric: throughput\n    min: 2\n"
    )
    cap = report.capacity_section(
        CAPACITY, report.load_thresholds(slo_file)["objectives"], capacity_responses()
    )
    assert cap["sentence"] == (
        "At p95 under 250 ms for GET /items*, p99 under 1 s for POST /login, GET /me and errors under 1%, "
        "capacity is 30 users at 250 requests/s (an objective was breached at 40 users)."
    )
    assert cap["p95_limit_seconds"] is None  # no p95 objective over all requests to draw


def test_capacity_sentence_uses_the_thresholds_the_steps_were_judged_by(tmp_path):
    # `lab run capacity --slo p95=300ms`: the steps' verdicts carry the run's threshold, not the file's.
    judged = json.loads(json.dumps(CAPACITY))
    for step in judged["steps"]:
        step["verdicts"] = [
            {"objective": "p95", "threshold": 0.3},
            {"objective": "errors", "threshold": 0.01},
        ]
    cap = report.capacity_section(judged, objectives(tmp_path)["objectives"], capacity_responses())
    assert cap["sentence"].startswith("At p95 under 300 ms and errors under 1%, capacity is 30 users")


def test_capacity_without_a_passing_step():
    failed = {"users": None, "requests_per_second": None, "reason": "breach",
              "steps": [capacity_step(10, 100.0, START, passed=False, breached=["errors"])]}  # fmt: skip
    cap = report.capacity_section(failed, [], capacity_responses())
    assert cap["users"] is None and cap["knee"] is None
    assert cap["sentence"] == (
        "Within the objectives the run was judged by, no capacity: even the first step (10 users) breached "
        "the objectives."
    )


def test_soak_verdict_from_drift_over_the_steady_part(tmp_path):
    built = report.build(make_run(tmp_path, "soak"), responses(), {}, THRESHOLDS)
    soak = built["soak"]
    assert soak["window"] == [START + 20, END]  # users reach their peak of 10 at +20 s
    checks = {c["check"]: c for c in soak["checks"]}
    # API memory grows 1000 B/s = 3.6 MB/h, under the 50 MiB/h default; the rest is flat.
    assert checks["API resident memory"]["drift_per_hour"] == pytest.approx(3.6e6)
    assert checks["API resident memory"]["plateau"] is None
    assert checks["p95 latency"]["drift_per_hour"] == pytest.approx(0.0, abs=1e-9)
    assert all(c["passed"] for c in soak["checks"]) and soak["verdict"] == "PASS"
    assert len(parse_page(render(built)).images) == 3


def test_soak_memory_that_steps_up_and_stays_reports_its_plateau(tmp_path):
    data = responses()
    data["api_rss"] = matrix([({}, lambda t: 80e6 + 20e6 * (t >= START + 25))])
    built = report.build(make_run(tmp_path, "soak"), data, {}, THRESHOLDS)
    memory = next(c for c in built["soak"]["checks"] if c["check"] == "API resident memory")
    assert memory["drift_per_hour"] == 0.0 and memory["passed"]
    assert memory["plateau"] == {"level": 100e6, "since": START + 25}
    assert "since 2023-11-14" in render(built)


def test_soak_judges_your_apis_memory_when_there_is_no_demo_api(tmp_path):
    data = own_api_responses()
    data["target_rss"] = matrix([({}, lambda t: 50e6 + (t - START) * 2000)])
    built = report.build(make_run(tmp_path, "soak"), data, {}, THRESHOLDS)
    memory = next(c for c in built["soak"]["checks"] if c["check"] == "API resident memory")
    assert memory["drift_per_hour"] == pytest.approx(7.2e6) and memory["passed"]


def test_soak_fails_on_a_drift_above_its_limit_or_without_data(tmp_path):
    strict = {**THRESHOLDS, "soak": {**THRESHOLDS["soak"], "max_api_memory_slope_bytes_per_hour": 1e6}}
    soak = report.build(make_run(tmp_path, "soak"), responses(), {}, strict)["soak"]
    assert [c["check"] for c in soak["checks"] if not c["passed"]] == ["API resident memory"]
    assert soak["verdict"] == "FAIL"
    data = responses()
    data["locust_rss"] = []
    soak = report.build(make_run(tmp_path, "soak"), data, {}, THRESHOLDS)["soak"]
    assert soak["verdict"] == "FAIL"
    assert (
        next(c for c in soak["checks"] if c["check"] == "Locust master resident memory")["drift_per_hour"]
        is None
    )


def test_report_json_holds_the_figures_not_the_series(tmp_path):
    built = report.build(make_run(tmp_path), responses(), {"slo": SLO}, THRESHOLDS)
    data = json.loads(json.dumps(report.strip_series(built)))
    assert "series" not in data
    assert data["summary"]["requests"] == 120 and data["slo"][0]["objective"] == "p95"


def write_run(results, run_id, **fields):
    folder = results / run_id
    folder.mkdir(parents=True)
    record = {
        "run_id": run_id,
        "scenario": "baseline",
        "host": "h",
        "start": START,
        "end": END,
        "workers_lost": [],
    }
    (folder / "run.json").write_text(json.dumps({**record, **fields}))
    return folder


def test_load_run_defaults_to_the_latest(tmp_path):
    write_run(tmp_path, "20231114T221320Z-baseline")
    write_run(tmp_path, "20231115T080000Z-soak", scenario="soak", end=None)
    run = report.load_run(tmp_path, None)
    assert run.run_id == "20231115T080000Z-soak" and run.ended_at is None and run.scenario == "soak"
    assert report.load_run(tmp_path, "20231114T221320Z-baseline").ended_at == END


def test_unknown_run_and_no_runs_are_one_line_errors(tmp_path):
    with pytest.raises(LabError, match="no runs in"):
        report.load_run(tmp_path, None)
    with pytest.raises(LabError, match="unknown run id 'nope'"):
        report.load_run(tmp_path, "nope")
    folder = write_run(tmp_path, "broken")
    (folder / "run.json").write_text('{"run_id": "broken"}')
    with pytest.raises(LabError, match="not a valid run record"):
        report.load_run(tmp_path, "broken")


def test_queries_select_the_run_and_its_window(tmp_path):
    run = make_run(tmp_path, run_id='odd"id')
    qs = report.queries(run)
    assert qs["cumulative_requests"] == 'sum(locust_requests_total{run_id="odd\\"id"})'
    assert qs["api_rps"] == 'sum(rate(http_requests_total{job="api"}[30s]))'
    assert qs["target_rps.otel"] == 'sum(rate(http_server_request_duration_seconds_count{job="target"}[30s]))'
    assert qs["target_cpu"] == 'sum(rate(process_cpu_seconds_total{job="target"}[30s]))'
    assert label_value("a\\b") == '"a\\\\b"'


# --- the Prometheus client against a real HTTP server -------------------------------------------


class FixedAnswers(BaseHTTPRequestHandler):
    answers: dict = {}

    def do_GET(self):
        status, body = self.answers[self.path.split("?")[0]]
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FixedAnswers)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_client_returns_the_result_of_a_successful_query(server):
    result = [{"metric": {"method": "GET", "name": "/items"}, "value": [END, "100"]}]
    body = {"status": "success", "data": {"resultType": "vector", "result": result}}
    FixedAnswers.answers = {"/api/v1/query": (200, json.dumps(body))}
    assert Prometheus(server).query("up", time=END) == result


def test_client_errors_are_one_line_lab_errors(server):
    FixedAnswers.answers = {
        "/api/v1/query": (
            400,
            json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}),
        ),
        "/api/v1/query_range": (404, "<html>not found</html>"),
    }
    with pytest.raises(LabError, match="rejected the query 'up{': parse error at char 3"):
        Prometheus(server).query("up{")
    with pytest.raises(LabError, match="answered HTTP 404 without JSON"):
        Prometheus(server).query_range("up", START, END, 5)


def test_unreachable_prometheus_names_the_url_and_the_fix():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(LabError, match=rf"Prometheus is unreachable at http://127.0.0.1:{port} .*lab up"):
            Prometheus(f"http://127.0.0.1:{port}", timeout=5).query("up")


def test_cli_report_of_an_unknown_run_exits_2_with_one_line(tmp_path, capsys):
    from lab.cli import main

    assert main(["report", "nope", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lab: error: unknown run id 'nope'") and "\n" not in err


# --- an open-model run: arrivals and the second clock -------------------------------------------------

ARRIVALS = {
    "run_id": RUN_ID,
    "arrivals": 130,
    "dropped": 10,
    "started": 120,
    "lateness": {"p50_seconds": 0.002, "p95_seconds": 0.4, "p99_seconds": 0.9},
    "intended": {
        "GET /items": {"requests": 100, "p50_seconds": 0.052, "p95_seconds": 0.5, "p99_seconds": 1.1},
        "POST /login": {"requests": 20, "p50_seconds": 0.21, "p95_seconds": 0.9, "p99_seconds": 1.5},
        "overall": {"requests": 120, "p50_seconds": 0.06, "p95_seconds": 0.7, "p99_seconds": 1.4},
    },
}


def open_model_responses():
    """A 60 s rate run offering 130 arrivals: 120 started, 10 dropped; the intended-start histogram is the
    response-time one with a third of each bucket's requests a bucket later."""
    data = responses()
    data["arrival_rate"] = matrix([({}, lambda t: 130 / 60)])
    data["cumulative_arrivals"] = matrix([({}, lambda t: 130 * (t - START) / 60)])
    data["cumulative_dropped"] = matrix([({}, lambda t: 10 * (t - START) / 60)])
    data["cumulative_started"] = matrix([({}, lambda t: 120 * (t - START) / 60)])
    data["intended_buckets"] = matrix(
        [
            ({"le": le}, lambda t, n=n: n * (t - START) / 60)
            for le, n in zip(LES, (5, 30, 80, 110, 120), strict=True)
        ]
    )
    return data


def test_an_open_model_run_shows_offered_against_achieved_and_both_clocks_side_by_side(tmp_path):
    built = report.build(
        make_run(tmp_path, "rate"), open_model_responses(), {"arrivals": ARRIVALS}, THRESHOLDS
    )
    arrivals = built["arrivals"]
    assert (arrivals["arrivals"], arrivals["dropped"], arrivals["started"]) == (130, 10, 120)
    assert arrivals["dropped_ratio"] == pytest.approx(10 / 130)
    assert arrivals["offered_per_second"] == pytest.approx(130 / 60)
    assert arrivals["started_per_second"] == pytest.approx(2.0)
    assert arrivals["requests_per_second"] == built["summary"]["requests_per_second"]
    # Locust's response time (locust_stats.csv) beside the intended-start latency (arrivals.json).
    clocks = {c["endpoint"]: c for c in arrivals["clocks"]}
    assert clocks["GET /items"]["response"] == {"p50_seconds": 0.05, "p95_seconds": 0.098, "p99_seconds": 0.4}
    assert clocks["GET /items"]["intended"] == {"p50_seconds": 0.052, "p95_seconds": 0.5, "p99_seconds": 1.1}
    assert (
        clocks["overall"]["response"]["p95_seconds"] == 0.3
        and clocks["overall"]["intended"]["p95_seconds"] == 0.7
    )
    # Over time, both clocks by the same quantile estimate as the latency plot.
    series = built["series"]
    assert [v for _, v in series["arrivals_rate"]] == pytest.approx([130 / 60] * 12)
    assert [v for _, v in series["dropped_rate"]] == pytest.approx([10 / 60] * 12)
    p95 = [v for _, v in series["intended_latency"][0.95]]
    assert p95 == pytest.approx([0.5] * 12)  # the rank 114 of 120 is above the 110 at or below 0.5 s: +Inf
    assert all(
        i > r
        for (_, i), (_, r) in zip(series["intended_latency"][0.95], series["latency"][0.95], strict=True)
    )
    html = render(built)
    page = parse_page(html)
    assert "Open model: arrivals and the second clock" in page.headings
    assert len(page.images) == 3  # the client and server timelines, and the open model's
    assert "<td>500.0 ms</td>" in html and "7.69%" in html  # GET /items' intended p95; the dropped ratio
    assert "arrivals" in report.strip_series(built)


def test_a_closed_run_shows_neither_the_arrivals_nor_the_second_clock(tmp_path):
    built = report.build(make_run(tmp_path), responses(), {}, THRESHOLDS)
    assert built["arrivals"] is None
    html = render(built)
    assert "Open model" not in html and "intended" not in html
    assert len(parse_page(html).images) == 2


RATE_CAPACITY = {
    "users": 40,
    "requests_per_second": 29.8,
    "rate": 30.0,
    "tolerance": 0.02,
    "reason": "dropped",
    "min_growth": 0.0,
    "steps": [
        {**capacity_step(40, 15.0, START), "offered_rate": 15.0, "dropped": 0, "short": None},
        {**capacity_step(40, 29.8, START + 15), "offered_rate": 30.0, "dropped": 0, "short": None},
        {
            **capacity_step(40, 40.1, START + 30, passed=False),
            "offered_rate": 45.0,
            "dropped": 70,
            "short": "dropped",
        },
    ],
}


def test_a_rate_capacity_search_is_stated_in_arrivals_and_requests_per_second(tmp_path):
    extras = {"capacity": RATE_CAPACITY}
    built = report.build(
        make_run(tmp_path, "rate-capacity"), capacity_responses(), extras, objectives(tmp_path)
    )
    cap = built["capacity"]
    assert cap["sentence"] == (
        "At p95 under 500 ms and errors under 1%, the API carries 30 arrivals/s offered, 30 requests/s, on this stack."
    )
    assert cap["rate"] == 30.0 and cap["stopped_by"] == "dropped"
    assert [s["offered_rate"] for s in cap["steps"]] == [15.0, 30.0, 45.0]
    html = render(built)
    assert "<th>arrivals/s offered</th>" in html and "dropped more of its arrivals than the tolerance" in html
    assert len(parse_page(html).images) == 3
