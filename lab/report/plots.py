"""The report's plots: matplotlib figures returned as base64 PNG, ready to embed in HTML.

Figures are made with matplotlib's object API (Figure, not pyplot): no global backend or figure
registry to set up or close, and the PNG is rendered by Agg. matplotlib takes seconds to import, so
`lab report` imports this module only when it draws (lab --help stays fast)."""

import base64
import io
from datetime import UTC, datetime

from matplotlib import dates as mdates
from matplotlib.figure import Figure

MS = 1000.0
MIB = 2.0**20
COLORS = {"p50": "#2b8a3e", "p95": "#e67700", "p99": "#c92a2a", "a": "#1c7ed6", "b": "#7048e8"}
SERVER_TITLE = "Server side over the same time axis"


def draw(report: dict) -> list[dict]:
    """[{"id", "title", "png"}] for the report: timelines always, capacity and soak when they apply."""
    plots = [{"id": "client", "title": "Load and client-side results over time", "png": _client(report)}]
    if report["server_sections"]:  # none: no source of server-side metrics in the window, no empty plots
        plots.append({"id": "server", "title": SERVER_TITLE, "png": _server(report)})
    if report.get("capacity") and report["capacity"]["steps"]:
        plots.append(
            {"id": "capacity", "title": "Capacity: throughput and p95 per step", "png": _capacity(report)}
        )
    if report.get("capacity") and report["capacity"]["resources"]:
        plots.append(
            {
                "id": "limits",
                "title": "What limits capacity: each resource against its limit",
                "png": _limits(report),
            }
        )
    if report.get("soak"):
        plots.append({"id": "soak", "title": "Soak: drift over the steady part", "png": _soak(report)})
    if report.get("arrivals"):
        plots.append(
            {"id": "arrivals", "title": "Open model: arrivals and both clocks", "png": _arrivals(report)}
        )
    return plots


def _times(points):
    return [datetime.fromtimestamp(t, UTC) for t, _ in points]


def _line(ax, points, label, color, scale=1.0, style="-"):
    kept = [(t, v) for t, v in points if v is not None]
    ax.plot(_times(kept), [v * scale for _, v in kept], style, label=label, color=color, linewidth=1.5)
    return bool(kept)


def _frame(ax, report, ylabel, has_data):
    run = report["run"]
    start = datetime.fromtimestamp(run["started_at"], UTC)
    end = datetime.fromtimestamp(run["started_at"] + run["duration_seconds"], UTC)
    ax.set_xlim(start, end)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=UTC))
    if not has_data:
        ax.text(
            0.5, 0.5, "no data in this window", transform=ax.transAxes, ha="center", va="center", color="gray"
        )


def _twin(ax, points, label, color, scale=1.0):
    other = ax.twinx()
    drawn = _line(other, points, label, color, scale, "--")
    other.set_ylabel(label, color=color)
    other.set_ylim(bottom=0)
    return other, drawn


def _legend(*axes):
    handles, labels = [], []
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    if handles:
        axes[0].legend(handles, labels, loc="upper left", fontsize=8)


def _percentiles(ax, quantiles):
    drawn = False
    for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        drawn |= _line(ax, quantiles.get(q, []), name, COLORS[name], MS)
    ax.set_ylim(bottom=0)
    return drawn


def _client(report):
    s = report["series"]
    fig = Figure(figsize=(11, 8.5))
    axes = fig.subplots(3, 1, sharex=True)
    drawn = _line(axes[0], s["users"], "users", COLORS["a"])
    axes[0].set_ylim(bottom=0)
    other, more = _twin(axes[0], s["rps"], "requests/s", COLORS["b"])
    _frame(axes[0], report, "users", drawn or more)
    _legend(axes[0], other)
    axes[0].set_title("Users and requests/s")

    _frame(axes[1], report, "latency (ms)", _percentiles(axes[1], s["latency"]))
    _legend(axes[1])
    axes[1].set_title("Request latency percentiles (from the Locust histogram)")

    drawn = _line(axes[2], s["error_ratio"], "error ratio (%)", COLORS["p99"], 100.0)
    axes[2].set_ylim(bottom=0)
    _frame(axes[2], report, "errors (%)", drawn)
    _legend(axes[2])
    axes[2].set_title("Failed requests")
    axes[2].set_xlabel("time (UTC)")
    return _png(fig)


def _server(report):
    """One plot a source the run's window has data from (report["server_sections"]): your own API's
    latency and throughput, and its CPU and memory; the demo API; Postgres; Redis."""
    s = report["series"]
    drawers = {
        # Your API's endpoints may export the HTTP histogram, the process_* series, or both.
        "target": [_target_http] * bool(s["target_rps"])
        + [_target_process] * bool(s["target_cpu"] or s["target_rss"]),
        "api": [_api],
        "postgres": [_postgres],
        "redis": [_redis],
    }
    panels = [draw for name in report["server_sections"] for draw in drawers[name]]
    fig = Figure(figsize=(11, 2.9 * len(panels) + 0.4))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, draw in zip(axes, panels, strict=True):
        draw(ax, report, s)
    axes[-1].set_xlabel("time (UTC)")
    return _png(fig)


def _http(ax, report, latency, rps, errors, who):
    drawn = _percentiles(ax, latency)
    other, more = _twin(ax, rps, f"{who} requests/s", COLORS["b"])
    _line(other, errors, f"{who} 5xx/s", "black", 1.0, ":")
    _frame(ax, report, f"{who} latency (ms)", drawn or more)
    _legend(ax, other)


def _target_http(ax, report, s):
    _http(ax, report, s["target_latency"], s["target_rps"], s["target_5xx_rate"], "your API")
    convention = report["server"]["target_convention"]
    ax.set_title(f"Your API (job target, {convention}): latency percentiles and throughput")


def _target_process(ax, report, s):
    _two_axes(
        ax, report, (s["target_cpu"], "CPU (cores)"), (s["target_rss"], "resident memory (MiB)"), 1 / MIB
    )
    ax.set_title("Your API (job target): CPU and resident memory (process_* series)")


def _api(ax, report, s):
    _http(ax, report, s["api_latency"], s["api_rps"], s["api_5xx_rate"], "API")
    ax.set_title("API (job api): latency percentiles and throughput")


def _postgres(ax, report, s):
    _two_axes(ax, report, (s["pg_xact_rate"], "commits/s"), (s["pg_connections"], "connections"))
    ax.set_title("Postgres: transactions and connections")


def _redis(ax, report, s):
    _two_axes(
        ax, report, (s["redis_commands_rate"], "commands/s"), (s["redis_memory"], "memory (MiB)"), 1 / MIB
    )
    ax.set_title("Redis: commands and memory")


def _two_axes(ax, report, left, right, right_scale=1.0):
    """(points, label) against the left axis and another against a right axis of its own."""
    drawn = _line(ax, left[0], left[1], COLORS["a"])
    ax.set_ylim(bottom=0)
    other, more = _twin(ax, right[0], right[1], COLORS["p95"], right_scale)
    _frame(ax, report, left[1], drawn or more)
    _legend(ax, other)


def _capacity(report):
    cap = report["capacity"]
    by = "offered_rate" if cap.get("rate_search") else "users"  # a rate search steps the offered rate
    steps = sorted(cap["steps"], key=lambda s: s[by])
    users = [s[by] for s in steps]
    fig = Figure(figsize=(11, 5))
    ax = fig.subplots()
    ax.plot(users, [s["requests_per_second"] for s in steps], "o-", color=COLORS["b"], label="requests/s")
    ax.set_xlabel("arrivals/s offered" if by == "offered_rate" else "users")
    ax.set_ylabel("requests/s", color=COLORS["b"])
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    other = ax.twinx()
    p95 = [(u, s.get("p95_seconds")) for u, s in zip(users, steps, strict=True)]
    other.plot(
        [u for u, v in p95 if v is not None],
        [v * MS for _, v in p95 if v is not None],
        "s--",
        color=COLORS["p95"],
        label="p95 (ms)",
    )
    if cap["p95_limit_seconds"] is not None:
        limit = cap["p95_limit_seconds"] * MS
        other.axhline(limit, color=COLORS["p95"], alpha=0.5, linestyle=":", label=f"p95 limit {limit:g} ms")
    other.set_ylabel("p95 (ms)", color=COLORS["p95"])
    other.set_ylim(bottom=0)
    for s in steps:
        if not s.get("passed"):
            ax.plot([s[by]], [s["requests_per_second"]], "x", color="red", markersize=12)
    best = cap["rate"] if by == "offered_rate" else cap["users"]
    if best is not None:
        unit = "arrivals/s" if by == "offered_rate" else "users"
        ax.axvline(best, color=COLORS["p50"], linewidth=2, label=f"capacity: {best:g} {unit}")
    if cap["knee"]:
        ax.axvline(
            cap["knee"]["users"], color="gray", linestyle="--", label=f"knee: {cap['knee']['users']:g} users"
        )
    _legend(ax, other)
    against = "the offered rate" if by == "offered_rate" else "users"
    ax.set_title(f"Requests/s and p95 against {against} (red x: step failed its criteria)")
    return _png(fig)


def _arrivals(report):
    s = report["series"]
    fig = Figure(figsize=(11, 6))
    axes = fig.subplots(2, 1, sharex=True)
    drawn = False
    for points, label, color, style in (
        (s["offered_rate"], "offered (target) arrivals/s", "black", "--"),
        (s["arrivals_rate"], "due arrivals/s", COLORS["a"], "-"),
        (s["started_rate"], "started arrivals/s", COLORS["p50"], "-"),
        (s["rps"], "requests/s", COLORS["b"], ":"),
        (s["dropped_rate"], "dropped arrivals/s", COLORS["p99"], "-"),
    ):
        drawn |= _line(axes[0], points, label, color, 1.0, style)
    axes[0].set_ylim(bottom=0)
    _frame(axes[0], report, "per second", drawn)
    _legend(axes[0])
    axes[0].set_title("Offered against achieved: arrivals due, started and dropped")

    drawn = False
    for q, name in ((0.95, "p95"), (0.99, "p99")):
        drawn |= _line(axes[1], s["latency"].get(q, []), f"{name} response time", COLORS[name], MS)
        drawn |= _line(
            axes[1],
            s["intended_latency"].get(q, []),
            f"{name} from the intended start",
            COLORS[name],
            MS,
            "--",
        )
    axes[1].set_ylim(bottom=0)
    _frame(axes[1], report, "latency (ms)", drawn)
    _legend(axes[1])
    axes[1].set_title("Both clocks (from the Locust histograms): the gap is the wait for a free user")
    axes[1].set_xlabel("time (UTC)")
    return _png(fig)


def _limits(report):
    """Every resource the search saw, as a percentage of its own limit at each step, with the line
    above which it counts as saturated (lab.core.limits)."""
    cap = report["capacity"]
    users = [s["users"] for s in cap["steps"]]
    fig = Figure(figsize=(11, 5))
    ax = fig.subplots()
    limiter = (cap["limiter"] or {}).get("resource")
    for rid, resource in cap["resources"].items():
        points = [(u, v) for u, v in zip(users, resource["utilisation"], strict=False) if v is not None]
        ax.plot(
            [u for u, _ in points],
            [v * 100 for _, v in points],
            "o-",
            linewidth=3 if rid == limiter else 1.2,
            label=f"{resource['name']} (of {resource['limit']})"
            + (": the limiter" if rid == limiter else ""),
        )
    saturated = cap["saturated_at"] * 100
    ax.axhline(saturated, color=COLORS["p99"], linestyle=":", label=f"saturated: {saturated:g}% of the limit")
    ax.set_xlabel("users")
    ax.set_ylabel("% of its limit")
    highest = max(
        (v for r in cap["resources"].values() for v in r["utilisation"] if v is not None), default=0
    )
    ax.set_ylim(0, max(110, highest * 100 + 5))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title("Each resource's utilisation per step (steady windows)")
    return _png(fig)


def _soak(report):
    soak, s = report["soak"], report["series"]
    window = soak["window"]
    panels = (
        ("p95 latency (ms)", s["latency"].get(0.95, []), MS),
        ("error ratio (%)", s["error_ratio"], 100.0),
        ("API RSS (MiB)", s["service_rss"], 1 / MIB),
        ("Locust master RSS (MiB)", s["locust_rss"], 1 / MIB),
    )
    fig = Figure(figsize=(11, 7))
    axes = fig.subplots(2, 2, sharex=True)
    for ax, (label, points, scale), check in zip(axes.flat, panels, soak["checks"], strict=True):
        drawn = _line(ax, points, label, COLORS["a"], scale)
        if window:
            ax.axvspan(*_times([(window[0], 0), (window[1], 0)]), color="#e9ecef", zorder=0)
        color = COLORS["p50"] if check["passed"] else COLORS["p99"]
        for part, name, style in (
            (check["middle"], "middle third median", "--"),
            (check["last"], "last third median", "-"),
        ):
            if part is not None:  # the two levels the drift was judged on
                _line(ax, [(part[0], part[2]), (part[1], part[2])], name, color, scale, style)
        if check["plateau"] is not None:
            (since,) = _times([(check["plateau"]["since"], 0)])
            ax.axvline(since, color=color, linestyle=":", linewidth=1, label="plateau since")
        _frame(ax, report, label, drawn)
        ax.ticklabel_format(axis="y", useOffset=False)  # show values, not "1e-10 + 415.789"
        values = [v * scale for _, v in points if v is not None]
        if check["unit"] != "bytes" and values:  # latency and errors from 0, with room above a flat line
            ax.set_ylim(0, max(values) * 1.2 or 1)
        ax.set_title(f"{check['check']}: {'PASS' if check['passed'] else 'FAIL'}", fontsize=10)
        ax.tick_params(axis="x", labelrotation=30)
    fig.suptitle("Steady part (shaded) and the levels its drift was judged on")
    return _png(fig)


def _png(fig) -> str:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
