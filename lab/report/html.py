"""report.html: one self-contained page (inline CSS, plots as data: URIs, no external assets).

The page is the Jinja2 template templates/report.html, autoescaped: values from the run (request names,
hosts, error texts) are escaped by the template; this module turns the report's figures into table
rows, with markupsafe.Markup only for the cells that hold markup (PASS/FAIL marks)."""

import time

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

STOPPED_BY = {
    "breach": "a step breached an objective",
    "knee": "throughput stopped growing with users (the knee)",
    "max_users": "it reached the most users it was allowed to try",
    "dropped": "a step dropped more of its arrivals than the tolerance allows",
    "shortfall": "a step started fewer arrivals than offered, beyond the tolerance",
    "max_rate": "it reached the highest rate it was allowed to offer",
}
MIB = 2.0**20


def render(report: dict, plots: list[dict]) -> str:
    cap, soak, slo = report["capacity"], report["soak"], report["slo"]
    context = {
        "run": report["run"],
        "summary": report["summary"],
        "slo": slo,
        "capacity": cap,
        "soak": soak,
        "errors": report["errors"],
        "plots": plots,
        "verdicts": _verdicts(report),
        "slo_rows": _slo_rows(slo or []),
        "endpoint_rows": _endpoint_rows(report),
        "error_rows": [[e["endpoint"], e["error"], f"{e['count']:,}"] for e in (report["errors"] or [])[:20]],
        "server_rows": _server_rows(report["server"]),
        "server_sections": report["server_sections"],
        "target_convention": report["server"]["target_convention"],
        "percentile_method": report["percentile_method"],
        "time_series_missing": report["time_series_missing"],
        "generated_at": time.time(),
    }
    if cap is not None:
        context |= _capacity(cap)
    if soak is not None:
        context["soak_rows"] = _soak_rows(soak)
    if report.get("arrivals") is not None:
        context["arrivals"] = report["arrivals"]
        context["clock_rows"] = _clock_rows(report["arrivals"])
    return _TEMPLATES.get_template("report.html").render(context) + "\n"


def _mark(passed) -> Markup:
    return Markup('<span class="pass">PASS</span>') if passed else Markup('<span class="fail">FAIL</span>')


def _verdicts(report) -> list[Markup]:
    items = []
    if report["slo"] is not None:
        failed = [v["objective"] for v in report["slo"] if not v.get("passed")]
        met = len(report["slo"]) - len(failed)
        text = f" SLOs: {met} of {len(report['slo'])} met" + (
            f" (failed: {', '.join(failed)})" if failed else ""
        )
        items.append(_mark(not failed) + text)
    if report["soak"] is not None:
        items.append(_mark(report["soak"]["verdict"] == "PASS") + " soak drift check")
    if report["capacity"] is not None:
        items.append(Markup.escape(report["capacity"]["sentence"]))
    return items


def _slo_rows(verdicts) -> list[list]:
    return [
        [
            str(v["objective"]),
            str(v.get("metric", "")),
            Markup('<span class="note">no data</span>') if v.get("passed") is None else _mark(v["passed"]),
            _quantity(v.get("value"), v.get("unit")),
            Markup("&le; " if v.get("bound") == "max" else "&ge; ")
            + _quantity(v.get("threshold"), v.get("unit")),
            f"{v.get('requests', 0):,}",
        ]
        for v in verdicts
    ]


def _quantity(value, unit) -> str:
    if value is None:
        return "n/a"
    if unit == "seconds":
        return _ms(value)
    if unit == "ratio":
        return _percent(value)
    return f"{value:.4g} {unit or ''}".strip()


def _capacity(cap) -> dict:
    by = "offered_rate" if cap.get("rate_search") else "users"  # a rate search steps the offered rate
    rows = [
        [
            f"{s[by]:g}",
            f"{s['requests_per_second']:.1f}",
            _ms(s["p95_seconds"]),
            _percent(s["error_ratio"]),
            _mark(s["passed"]) + (f" ({', '.join(s['breached'])})" if s["breached"] else ""),
        ]
        for s in sorted(cap["steps"], key=lambda s: s[by])
    ]
    knee = cap["knee"]
    knee_text = (
        f"Knee at {knee['users']:g} users ({knee['requests_per_second']:.1f} requests/s): the next step's extra "
        f"users added less than {cap['min_growth']:.0%} of the requests/s they would at this step's rate per user."
        if knee
        else "No knee: throughput still grew with users at every step."
    )
    stopped = STOPPED_BY.get(cap["stopped_by"], "it had not finished")
    if cap.get("rate_search"):
        knee_text = "A rate search has no knee: a step ends it by falling short of its offered rate."
    head = [
        "arrivals/s offered" if by == "offered_rate" else "users",
        "requests/s",
        "p95",
        "error ratio",
        "objectives",
    ]
    return {
        "capacity_rows": rows,
        "capacity_knee": knee_text,
        "capacity_stopped": stopped,
        "capacity_head": head,
    }


def _clock_rows(arrivals) -> list[list]:
    """Per endpoint, each percentile on Locust's clock and on the intended-start clock, side by side."""
    rows = []
    for c in arrivals["clocks"]:
        cells = [
            Markup("<b>overall</b>") if c["endpoint"] == "overall" else c["endpoint"],
            f"{c['requests']:,}",
        ]
        for q in ("p50_seconds", "p95_seconds", "p99_seconds"):
            cells += [_ms(c["response"][q]), _ms(c["intended"][q])]
        rows.append(cells)
    return rows


def _soak_rows(soak) -> list[list]:
    return [
        [
            c["check"],
            "not judged" if c["passed"] is None else _mark(c["passed"]),
            "no data" if c["drift_per_hour"] is None else _per_hour(c["drift_per_hour"], c["unit"]),
            "none in the SLO file"
            if c["max_drift_per_hour"] is None
            else _per_hour(c["max_drift_per_hour"], c["unit"]),
            "-" if c["plateau"] is None else f"since {_utc(c['plateau']['since'])} UTC",
        ]
        for c in soak["checks"]
    ]


def _per_hour(slope: float, unit: str) -> str:
    if unit == "seconds":
        return f"{slope * 1000:+.2f} ms/h"
    if unit == "ratio":
        return f"{slope * 100:+.3f} points/h"  # percentage points of the error ratio
    return f"{slope / MIB:+.2f} MiB/h"


def _endpoint_rows(report) -> list[list]:
    rows = []
    for key, f in [*report["endpoints"].items(), ("overall", report["summary"])]:
        rows.append(
            [
                Markup("<b>overall</b>") if key == "overall" else key,
                f"{f['requests']:,}",
                f"{f['failures']:,}",
                f"{f['requests_per_second']:.2f}",
                _percent(f["error_ratio"]),
                _ms(f["p50_seconds"]),
                _ms(f["p95_seconds"]),
                _ms(f["p99_seconds"]),
            ]
        )
    return rows


def _server_rows(server) -> list[list]:
    """The server side's figures that have data in the window (a source the run did not have is left out)."""
    rows = [
        ("Your API requests/s, mean", server["target_requests_per_second_mean"], "{:.1f}", 1),
        ("Your API 5xx/s, mean", server["target_5xx_per_second_mean"], "{:.2f}", 1),
        ("Your API p95, highest", server["target_p95_seconds_max"], "{:.1f} ms", 1000),
        ("Your API CPU, mean", server["target_cpu_cores_mean"], "{:.3g} cores", 1),
        ("Your API CPU, highest", server["target_cpu_cores_max"], "{:.3g} cores", 1),
        (
            "Your API resident memory, highest",
            server["target_resident_memory_bytes_max"],
            "{:.0f} MiB",
            1 / MIB,
        ),
        ("API requests/s, mean", server["api_requests_per_second_mean"], "{:.1f}", 1),
        ("API 5xx/s, mean", server["api_5xx_per_second_mean"], "{:.2f}", 1),
        ("API p95, highest", server["api_p95_seconds_max"], "{:.1f} ms", 1000),
        ("API resident memory, highest", server["api_resident_memory_bytes_max"], "{:.0f} MiB", 1 / MIB),
        ("Postgres commits/s, mean", server["postgres_commits_per_second_mean"], "{:.1f}", 1),
        ("Postgres connections, highest", server["postgres_connections_max"], "{:.0f}", 1),
        ("Redis commands/s, mean", server["redis_commands_per_second_mean"], "{:.1f}", 1),
        ("Redis memory, highest", server["redis_memory_bytes_max"], "{:.1f} MiB", 1 / MIB),
        (
            "Locust master resident memory, highest",
            server["locust_resident_memory_bytes_max"],
            "{:.0f} MiB",
            1 / MIB,
        ),
    ]
    return [[label, fmt.format(value * scale)] for label, value, fmt, scale in rows if value is not None]


def _ms(seconds) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"


def _percent(ratio) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:.2f}%"


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{secs} s"


# Last: the filters are this module's formatting functions.
_TEMPLATES = Environment(
    loader=PackageLoader("lab.report", "templates"), autoescape=True, keep_trailing_newline=False
)
_TEMPLATES.filters.update(ms=_ms, percent=_percent, utc=_utc, duration=_duration)
_TEMPLATES.globals["Markup"] = Markup
