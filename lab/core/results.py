"""Reading a run's results folder: the figures Locust itself wrote (locust_stats.csv, locust_failures.csv)
and the lab's verdict files. These are a run's exact whole-run client figures; `lab report`,
`lab compare` and `lab runs` take them from here, never from Prometheus."""

import csv
import json
from pathlib import Path

from lab.core import slo
from lab.core.errors import LabError

AGGREGATED = "Aggregated"
PERCENTILE_COLUMNS = {"p50_seconds": "50%", "p95_seconds": "95%", "p99_seconds": "99%"}


def _read_csv(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError as exc:
        raise LabError(
            f"cannot read {path} ({exc.strerror}): the run has not ended, or its folder is incomplete"
        ) from None


def _ms(text: str) -> float | None:
    return None if text in ("", "N/A") else float(text) / 1000.0


def client_figures(folder: Path, duration: float) -> dict[str, dict]:
    """Whole-run figures per endpoint ("METHOD name") and "overall", from locust_stats.csv: request and
    failure counts, requests/s over the run's `duration`, error ratio, and Locust's own p50/p95/p99."""
    figures = {}
    for row in _read_csv(folder / "locust_stats.csv"):
        requests, failures = int(row["Request Count"]), int(row["Failure Count"])
        key = "overall" if row["Name"] == AGGREGATED else f"{row['Type']} {row['Name']}".strip()
        figures[key] = {
            "requests": requests,
            "failures": failures,
            "requests_per_second": requests / duration if duration > 0 else 0.0,
            "error_ratio": failures / requests if requests else 0.0,
            **{name: _ms(row[column]) if requests else None for name, column in PERCENTILE_COLUMNS.items()},
        }
    if "overall" not in figures:
        raise LabError(f"{folder / 'locust_stats.csv'} has no Aggregated row: is it Locust's stats CSV?")
    return figures


def on_intended_clock(figures: dict[str, dict], arrivals: dict) -> dict[str, dict]:
    """An open-model run's figures (client_figures) with each request's p50/p95/p99 from its arrival's due
    time (arrivals.json, Locust's percentile function), as its verdicts judge them, and the share of
    arrivals dropped in "overall"."""
    timed = {
        key: {**values, **{k: arrivals["intended"][key][k] for k in PERCENTILE_COLUMNS}}
        if key in arrivals["intended"]
        else values
        for key, values in figures.items()
    }
    timed["overall"] = {
        **timed["overall"],
        "dropped_ratio": slo.dropped_ratio(arrivals["dropped"], arrivals["arrivals"]),
    }
    return timed


def failures(folder: Path) -> list[dict]:
    """locust_failures.csv: [{"endpoint", "error", "count"}], most frequent first."""
    rows = [
        {
            "endpoint": f"{row['Method']} {row['Name']}".strip(),
            "error": row["Error"],
            "count": int(row["Occurrences"]),
        }
        for row in _read_csv(folder / "locust_failures.csv")
    ]
    return sorted(rows, key=lambda r: -r["count"])


def verdict_files(folder: Path) -> dict:
    """slo.json, capacity.json and arrivals.json (an open-model run's) of the run, those that exist."""
    extras = {}
    for name in ("slo", "capacity", "arrivals"):
        path = folder / f"{name}.json"
        if path.is_file():
            try:
                extras[name] = json.loads(path.read_text())
            except ValueError as exc:
                raise LabError(f"{path} is not valid JSON ({exc}); delete it or rerun the run") from None
    return extras
