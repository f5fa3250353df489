"""The demo API's settings (compose/api/demoapi/config.py): the pool bounds and the bottleneck knobs."""

import time

import pytest
from demoapi.config import ConfigError, load_settings
from demoapi.routes import burn_cpu

BASE = {"API_SECRET_KEY": "s" * 32}


def test_knobs_are_off_and_the_pool_has_its_defaults_unless_set():
    settings = load_settings(BASE)
    assert (settings.cpu_work_ms, settings.db_query_delay_ms) == (0, 0)
    assert (settings.db_pool_min_size, settings.db_pool_max_size) == (2, 10)
    knobs = load_settings(BASE | {"API_CPU_WORK_MS": "5", "API_DB_QUERY_DELAY_MS": " 50 "})
    assert (knobs.cpu_work_ms, knobs.db_query_delay_ms) == (5, 50)


def test_a_pool_maximum_below_the_default_minimum_lowers_the_minimum():
    settings = load_settings(BASE | {"DB_POOL_MAX_SIZE": "1"})
    assert (settings.db_pool_min_size, settings.db_pool_max_size) == (1, 1)
    with pytest.raises(ConfigError, match="DB_POOL_MIN_SIZE=2 exceeds DB_POOL_MAX_SIZE=1"):
        load_settings(BASE | {"DB_POOL_MAX_SIZE": "1", "DB_POOL_MIN_SIZE": "2"})


@pytest.mark.parametrize("name", ["API_CPU_WORK_MS", "API_DB_QUERY_DELAY_MS"])
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("-1", "=-1 is below 0: set it to a whole number from 0 to 1000"),
        ("1001", "=1001 is above 1000: set it to a whole number from 0 to 1000"),
        ("2.5", "='2.5' is not an integer: set it to a whole number from 0 to 1000"),
    ],
)
def test_knobs_out_of_range_name_the_setting_and_the_fix(name, raw, message):
    with pytest.raises(ConfigError) as error:
        load_settings(BASE | {name: raw})
    assert str(error.value).startswith(name + message)
    assert load_settings(BASE | {name: "1000"})  # the maximum itself is allowed


def test_burn_cpu_spends_at_least_that_much_of_the_threads_cpu_time():
    before = time.thread_time()
    burn_cpu(0.03)
    assert time.thread_time() - before >= 0.03
