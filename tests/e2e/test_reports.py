"""`lab report` and `lab compare` on the real stack: the report agrees with Locust's own CSV, a run
compared with itself has no regression, and a run against the API slowed by API_EXTRA_LATENCY_MS has.

Duration: the shared `loaded_stack` run, then about 2 to 3 minutes for the slowed run (the API is
recreated twice, and a 30 s run). Set LAB_SCREENSHOT_DIR to keep the Chromium screenshot.
"""

import json
import os
import shutil
import subprocess

import pytest

from lab.plugin import exporter
from lab.report import analysis
from tests.support.report_files import embedded_images, locust_rows

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def reported(loaded_stack):
    loaded_stack.lab("report", loaded_stack.run_id)
    return loaded_stack.results_dir / loaded_stack.run_id


def test_report_embeds_its_plots_and_agrees_with_locusts_csv(reported):
    images = embedded_images((reported / "report.html").read_text())
    assert len(images) >= 2 and all(src.startswith("data:image/png;base64,") for src in images)

    figures = json.loads((reported / "report.json").read_text())
    for key, row in locust_rows(reported).items():
        ours = figures["summary"] if key == "Aggregated" else figures["endpoints"][key]
        assert ours["requests"] == int(row["Request Count"]), key
        low, high = analysis.bucket_bounds(float(row["95%"]) / 1000, exporter.DEFAULT_BUCKETS)
        assert low <= ours["p95_seconds"] <= high, (key, ours["p95_seconds"], row["95%"])
    # The server side was found over the same window.
    server = figures["server"]
    assert server["api_requests_per_second_mean"] > 0
    assert server["postgres_commits_per_second_mean"] > 0 and server["redis_commands_per_second_mean"] > 0
    # The demo API served no 5xx: zero, not "no data" (it has no 5xx series until its first 5xx).
    assert server["api_5xx_per_second_mean"] == 0


@pytest.mark.skipif(CHROMIUM is None, reason="chromium (Debian package) is not installed")
def test_report_renders_in_headless_chromium(reported, tmp_path):
    import matplotlib.image

    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2400",
         (reported / "report.html").as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2400, 1280)
    assert len({tuple(p) for p in pixels[::8, ::8].reshape(-1, pixels.shape[2])}) > 50
    if os.environ.get("LAB_SCREENSHOT_DIR"):
        shutil.copy(shot, os.path.join(os.environ["LAB_SCREENSHOT_DIR"], "report-e2e.png"))


def test_compare_a_run_with_itself_reports_no_regression(loaded_stack):
    result = loaded_stack.lab("compare", loaded_stack.run_id, loaded_stack.run_id)
    assert "no regression" in result.stdout


def test_compare_against_a_slowed_run_reports_a_regression(loaded_stack):
    stack = loaded_stack
    stack.compose("up", "--detach", "--wait", "api", env={"API_EXTRA_LATENCY_MS": "200"})
    try:
        slow_run = stack.run_load(users=10, seconds=30)
    finally:
        stack.compose("up", "--detach", "--wait", "api", env={"API_EXTRA_LATENCY_MS": "0"})
    result = stack.lab("compare", stack.run_id, slow_run, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "REGRESSION" in result.stdout
    comparison = json.loads((stack.results_dir / slow_run / "compare.json").read_text())
    # Every /api/v1 request is 200 ms slower: endpoints that were fast before show it in p95. (The
    # overall p95 may not: slow password hashing on login can dominate it in both runs.)
    slower = [r for r in comparison["rows"] if r["regression"] and r["metric"] == "p95_seconds"]
    assert any(r["change"] >= 0.15 for r in slower), comparison["rows"]


def test_unknown_run_is_a_one_line_error(stack):
    result = stack.lab("report", "19990101T000000Z-nope", check=False)
    assert result.returncode == 2
    assert (
        result.stderr.strip().startswith("lab: error: unknown run id")
        and len(result.stderr.splitlines()) == 1
    )
