"""The exporter's conversions: bucket options, cumulative buckets, folding, error normalisation."""

import argparse
import bisect
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from locust.stats import RequestStats, bucket_response_time, calculate_response_time_percentile

from lab.plugin.exporter import (
    DEFAULT_BUCKETS,
    OTHER,
    Folder,
    cumulative_buckets,
    fold_entries,
    normalise_error,
    parse_buckets,
    rounding_keeps,
    whole_number,
)
from lab.report import analysis

DEFAULT_MS = [round(b * 1000, 6) for b in DEFAULT_BUCKETS]
SLO_THRESHOLDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)  # docs/architecture.md

# Raw response times in ms as Locust sees them, from sub-ms up to the highest finite bucket.
raw_times = st.floats(min_value=0.0, max_value=DEFAULT_BUCKETS[-1] * 1000, allow_nan=False)
distributions = st.lists(raw_times, min_size=1, max_size=300).map(
    lambda samples: _distribution([bucket_response_time(t) for t in samples])
)


def _distribution(rounded: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for value in rounded:
        out[value] = out.get(value, 0) + 1
    return out


def test_default_buckets_include_the_slo_thresholds_and_are_exact_under_rounding():
    assert set(SLO_THRESHOLDS) <= set(DEFAULT_BUCKETS)
    assert all(rounding_keeps(ms) for ms in DEFAULT_MS)
    assert list(DEFAULT_BUCKETS) == sorted(set(DEFAULT_BUCKETS))


def test_parse_buckets_reads_seconds():
    assert parse_buckets("0.005, 0.1,0.25,1,2.5") == (0.005, 0.1, 0.25, 1.0, 2.5)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0.0075", "7.5 ms is never a value"),  # Locust keeps whole ms below 100 ms
        ("0.125", "125 ms is never a value"),  # tens of ms between 100 ms and 1 s
        ("1.25", "1250 ms is never a value"),  # hundreds of ms between 1 s and 10 s
        ("12.5", "12500 ms is never a value"),  # whole seconds above 10 s
        ("0.5,0.1", "strictly increasing"),
        ("0,0.1", "positive"),
        ("fast,slow", "comma-separated list of seconds"),
        ("", "positive"),
    ],
)
def test_parse_buckets_rejects_boundaries_rounding_cannot_hit(text, problem):
    with pytest.raises(argparse.ArgumentTypeError, match=problem):
        parse_buckets(text)


def test_counts_must_be_whole_and_not_negative():
    assert whole_number("0") == 0 and whole_number("200") == 200
    for bad in ("-1", "many", "2.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="whole number"):
            whole_number(bad)


@given(distributions)
def test_cumulative_buckets_count_samples_at_or_below_each_boundary(response_times):
    cumulative = cumulative_buckets(response_times, DEFAULT_MS)
    assert len(cumulative) == len(DEFAULT_MS) + 1
    assert cumulative == sorted(cumulative)  # never decreasing
    assert cumulative[-1] == sum(response_times.values())  # +Inf holds every sample
    for bound, count in zip(DEFAULT_MS, cumulative, strict=False):
        assert count == sum(n for value, n in response_times.items() if value <= bound)


@settings(max_examples=300)
@given(distributions, st.sampled_from([0.5, 0.9, 0.95, 0.99]))
@example({3: 3, 6: 3}, 0.5)  # the rank at a bucket's top: 0.002 + 0.003 * 1.0 is a hair above 0.005
def test_histogram_quantile_lands_in_the_bucket_of_the_ranked_sample(response_times, q):
    """Exact buckets: histogram_quantile picks the bucket holding the sample of rank ceil(q*N), and
    Locust's percentile is the sample of rank floor(q*N)+1: the same one unless q*N is whole."""
    samples = sorted(v for v, n in response_times.items() for _ in range(n))
    rank = q * len(samples)
    cumulative = cumulative_buckets(response_times, DEFAULT_MS)
    estimate = analysis.histogram_quantile(
        q, dict(zip([*DEFAULT_BUCKETS, math.inf], cumulative, strict=True))
    )
    bucket_of = lambda seconds: bisect.bisect_left(DEFAULT_BUCKETS, seconds)  # noqa: E731
    assert bucket_of(estimate) == bucket_of(samples[math.ceil(rank) - 1] / 1000)
    locust = calculate_response_time_percentile(response_times, len(samples), q)
    assert locust == samples[int(rank)]
    if not rank.is_integer():
        assert bucket_of(estimate) == bucket_of(locust / 1000)


@given(
    st.lists(st.text(alphabet="abcdef/", min_size=1, max_size=4), max_size=60),
    st.integers(min_value=0, max_value=10),
)
def test_folder_admits_the_first_distinct_values_and_folds_the_rest(values, limit):
    folder = Folder("name", limit)
    out = [folder(v) for v in values]
    distinct = list(dict.fromkeys(values))
    admitted = distinct[:limit]
    assert out == [v if v in admitted else OTHER for v in values]
    assert len(folder.folded) == len(distinct) - len(admitted)
    assert [folder(v) for v in values] == out  # stable over later scrapes


def test_folder_logs_once(caplog):
    folder = Folder("error", 1)
    for value in ("a", "b", "c", "d"):
        folder(value)
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "--exporter-max-errors" in caplog.records[0].getMessage()


request_logs = st.lists(
    st.tuples(st.sampled_from(["GET", "POST"]), st.integers(0, 40), raw_times, st.integers(0, 5000)),
    min_size=1,
    max_size=200,
)


@given(request_logs, st.integers(min_value=0, max_value=15))
def test_folding_entries_keeps_every_request_and_sample(logs, max_names):
    stats = RequestStats()
    for method, n, response_time, length in logs:
        stats.log_request(method, f"/page/{n}", response_time, length)
    rows = fold_entries(stats.entries.values(), Folder("name", max_names))
    assert len({name for _method, name in rows} - {OTHER}) <= max_names
    assert sum(r.requests for r in rows.values()) == stats.total.num_requests
    assert sum(r.content_length for r in rows.values()) == stats.total.total_content_length
    assert sum(r.duration_sum_ms for r in rows.values()) == pytest.approx(stats.total.total_response_time)
    for row in rows.values():
        assert sum(row.response_times.values()) == row.requests  # histogram _count == requests_total
    merged: dict[int, int] = {}
    for row in rows.values():
        for value, count in row.response_times.items():
            merged[value] = merged.get(value, 0) + count
    assert merged == dict(stats.total.response_times)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        (
            "HTTPError('500 Server Error: Internal Server Error for url: /items/[id]')",
            "HTTPError('500 Server Error: Internal Server Error for url: /items/[id]')",
        ),
        ("CatchResponseError('order 4812 not found')", "'order <n> not found'"),
        ("LocustBadStatusCode(code=503)", "LocustBadStatusCode(code=503)"),
        ("unexpected status 429 after 3 tries", "unexpected status 429 after <n> tries"),
        ("code=5000 and 1500 Server Error", "code=<n> and <n> Server Error"),
        (
            "ConnectionError(<urllib3.connection.HTTPConnection object at 0x7f3a2b1c9d90>: refused)",
            "ConnectionError(<urllib3.connection.HTTPConnection object at <hex>>: refused)",
        ),
        ("user 3fa85f64-5717-4562-b3fc-2c963f66afa6 locked", "user <uuid> locked"),
        ("timeout talking to 10.0.3.12:5432 after 1.5 s", "timeout talking to <addr> after <n> s"),
        ("GET http://127.0.0.1:8000/items/77?x=1 failed", "GET <url> failed"),
        ("token deadbeefcafe0042 rejected", "token <hex> rejected"),
        ("  spread\n over\tlines ", "spread over lines"),
    ],
)
def test_normalise_error_strips_what_varies_per_request(raw, normalised):
    assert normalise_error(raw) == normalised


@given(st.text(max_size=400), st.integers(min_value=5, max_value=200))
def test_normalise_error_is_bounded_and_idempotent(text, limit):
    once = normalise_error(text, limit)
    assert len(once) <= limit
    assert normalise_error(once, limit) == once


@given(st.lists(st.integers(min_value=0, max_value=10**12), min_size=3, max_size=3))
def test_errors_differing_only_in_numbers_normalise_alike(numbers):
    template = "order {} of user {} failed after {} ms"
    assert normalise_error(template.format(*numbers)) == "order <n> of user <n> failed after <n> ms"
