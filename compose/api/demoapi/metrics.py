"""Prometheus metrics of the API, named as in docs/architecture.md (job `api`)."""

from collections.abc import Callable, Iterator
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator import metrics as instrumentator_metrics

# Include the SLO thresholds (docs/architecture.md, "Latency buckets").
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
UNINSTRUMENTED_PATHS = ("/metrics", "/healthz", "/readyz")
# From a free connection (tens of microseconds) to a queue behind an exhausted pool (seconds).
POOL_WAIT_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip

CACHE_HITS = Counter("api_cache_hits_total", "Catalog reads answered from Redis.", ["cache"])
CACHE_MISSES = Counter("api_cache_misses_total", "Catalog reads that had to go to Postgres.", ["cache"])
CACHE_ERRORS = Counter(
    "api_cache_errors_total", "Redis calls that failed; the read fell back to Postgres.", ["cache"]
)
POOL_ACQUIRE_WAIT = Histogram(
    "api_db_pool_acquire_wait_seconds",
    "Time from asking the Postgres pool for a connection to getting one (opening it included).",
    buckets=POOL_WAIT_BUCKETS,
)


class PoolCollector(Collector):
    """Reads the asyncpg pool at scrape time, so idle periods are reported as they are."""

    def __init__(self, get_pool: Callable[[], object | None]) -> None:
        self._get_pool = get_pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._get_pool()
        size = pool.get_size() if pool is not None else 0
        idle = pool.get_idle_size() if pool is not None else 0
        yield GaugeMetricFamily("api_db_pool_size", "Connections open in the Postgres pool.", value=size)
        yield GaugeMetricFamily(
            "api_db_pool_connections_in_use",
            "Pool connections acquired by a request right now.",
            value=size - idle,
        )
        yield GaugeMetricFamily(
            "api_db_pool_max_connections",
            "Connections the Postgres pool may open (DB_POOL_MAX_SIZE); requests wait beyond it.",
            value=pool.get_max_size() if pool is not None else 0,
        )


# Where a container sees its own cgroup: cgroup v2 (a private cgroup namespace, Docker's default there) or
# v1's cpu controller (Docker mounts the container's own cgroup at each controller's folder).
CGROUP = Path("/sys/fs/cgroup")


def cpu_quota_cores(cgroup: Path = CGROUP) -> float | None:
    """The CPU quota of the cgroup `cgroup` shows (a container's `cpus:`), in cores: its quota over its
    period, from v2's `cpu.max` ("50000 100000"; "max 100000" sets none) or v1's `cpu.cfs_quota_us` (-1
    sets none) and `cpu.cfs_period_us`. None when no quota is set or neither file is there."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()
    except FileNotFoundError:
        try:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except FileNotFoundError:
            return None
    if quota in ("max", "-1"):
        return None
    return int(quota) / int(period)


class CpuQuotaCollector(Collector):
    """The container's CPU quota, read at scrape time from the cgroup the API runs in: a single-threaded
    process is limited by it where it is below one core (the lab's limiter divides by it)."""

    def __init__(self, cgroup: Path = CGROUP) -> None:
        self._cgroup = cgroup

    def collect(self) -> Iterator[GaugeMetricFamily]:
        cores = cpu_quota_cores(self._cgroup)
        if cores is not None:  # absent without a quota: nothing to divide by
            yield GaugeMetricFamily(
                "api_cpu_quota_cores",
                "The CPU quota of the API's container (its cgroup's quota over its period), in cores.",
                value=cores,
            )


def instrument(app: FastAPI) -> None:
    """Add the request metrics (route templates as `handler`, exact status codes) and /metrics."""
    instrumentator = Instrumentator(
        should_group_status_codes=False,
        should_group_untemplated=True,  # unmatched paths count under handler="none"
        should_instrument_requests_inprogress=True,
        inprogress_name="http_requests_inprogress",
        inprogress_labels=True,
        excluded_handlers=[f"^{path}$" for path in UNINSTRUMENTED_PATHS],
    )
    instrumentator.add(instrumentator_metrics.requests())
    instrumentator.add(instrumentator_metrics.latency(buckets=LATENCY_BUCKETS))
    instrumentator.instrument(app).expose(app, endpoint="/metrics", include_in_schema=False)


def register_collectors(get_pool: Callable[[], object | None]) -> None:
    REGISTRY.register(PoolCollector(get_pool))
    REGISTRY.register(CpuQuotaCollector())
