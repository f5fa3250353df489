"""Keep the Locust master's memory flat on long runs: trim what Locust keeps per second to a window.

Locust's master keeps, for as long as a test runs, one key a second in each StatsEntry's
`num_reqs_per_sec` and `num_fail_per_sec` (one entry per request name, plus the aggregate), and one
row every five seconds in `RequestStats.history` (the charts of the web UI's first page and of the
HTML report). Over a soak of hours that grows without bound (locust issues #2045, #1790).

Locust reads these per-second dicts only over the last dozen seconds (`current_rps`,
`current_fail_per_sec`), so this module drops whatever is older than the window on a timer. It never
touches the totals: `num_requests`, `num_failures`, `response_times` (the distribution behind the
percentiles and the exporter's histogram), `total_response_time`, `total_content_length`, min/max.
`response_times_cache` (the current percentiles) is already bounded by Locust to 20 seconds.

What the window costs: the HTML report's charts show its last `--lab-history-seconds` only. Prometheus
is the record of the run.
"""

from __future__ import annotations

import argparse
import logging
import math
import time

import gevent
from locust.runners import LocalRunner, MasterRunner
from locust.stats import HISTORY_STATS_INTERVAL_SEC

from lab.plugin import arrivals

logger = logging.getLogger(__name__)

DEFAULT_HISTORY_SECONDS = 600
# current_rps looks 12 seconds back; a shorter window would change what Locust shows.
MIN_HISTORY_SECONDS = 60
TRIM_INTERVAL_SECONDS = 10.0


def seconds_or_off(minimum: int):
    """An option type: 0 (off) or a whole number of seconds of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value != 0 and value < minimum:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not 0 (off) or a whole number of seconds >= {minimum}"
            )
        return value

    return parse


# The --lab-history-seconds value: 0 (trimming off) or at least MIN_HISTORY_SECONDS.
history_seconds = seconds_or_off(MIN_HISTORY_SECONDS)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--lab-history-seconds",
        type=history_seconds,
        default=DEFAULT_HISTORY_SECONDS,
        env_var="LOCUST_LAB_HISTORY_SECONDS",
        include_in_web_ui=False,
        help="Seconds of per-second stats and chart history the master keeps in memory "
        f"(default {DEFAULT_HISTORY_SECONDS}; 0 keeps everything). Totals and percentiles are never trimmed.",
    )


# --- pure trimming -------------------------------------------------------------------------------


def trim_per_second(counts: dict[int, int], keep_from: int) -> int:
    """Drop the seconds before `keep_from` from a {second: count} dict in place; returns how many."""
    old = [second for second in counts if second < keep_from]
    for second in old:
        del counts[second]
    return len(old)


def trim_history(history: list, keep_rows: int) -> int:
    """Keep the last `keep_rows` rows of RequestStats.history, in place (others may hold the list)."""
    extra = len(history) - keep_rows
    if extra <= 0:
        return 0
    del history[:extra]
    return extra


def history_rows(seconds: int) -> int:
    return max(1, math.ceil(seconds / HISTORY_STATS_INTERVAL_SEC))


def trim_stats(stats, seconds: int, now: float) -> int:
    """Trim a RequestStats to the last `seconds` before `now`; returns how many items were dropped."""
    keep_from = int(now) - seconds
    dropped = 0
    for entry in (stats.total, *stats.entries.values()):
        dropped += trim_per_second(entry.num_reqs_per_sec, keep_from)
        dropped += trim_per_second(entry.num_fail_per_sec, keep_from)
    return dropped + trim_history(stats.history, history_rows(seconds))


# --- plugin wiring -------------------------------------------------------------------------------


def trim_forever(environment, seconds: int, interval: float = TRIM_INTERVAL_SECONDS) -> None:
    while True:
        gevent.sleep(interval)
        # Read environment.stats each time: Locust replaces the entries on clear_all.
        now = time.time()
        trim_stats(environment.stats, seconds, now)
        totals = arrivals.totals_of(environment)  # the open model's per-second counts and second clock
        if totals is not None:
            trim_stats(totals.intended, seconds, now)
            trim_stats(totals.late, seconds, now)
            for counts in totals.per_second():
                trim_per_second(counts, int(now) - seconds)


def on_init(environment, runner=None, **_kw) -> None:
    options = environment.parsed_options
    # Workers send their per-second counts and reset them at every report: only the master accumulates.
    if options is None or not isinstance(runner, MasterRunner | LocalRunner):
        return
    seconds = options.lab_history_seconds
    if not seconds:
        return
    # In the runner's greenlet group, so that it ends with the runner.
    runner.greenlet.spawn(trim_forever, environment, seconds)
    logger.info("lab trim: the master keeps %d s of per-second stats and chart history", seconds)


def register(events) -> None:
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(on_init)
