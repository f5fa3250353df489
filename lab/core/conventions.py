"""What an HTTP service's own metrics say about it, whatever library exported them: request rate,
error ratio, latency quantiles, CPU and memory of one Prometheus job, as PromQL.

Each convention is a request-duration histogram and how its series are named and labelled. The report
and the System-under-test dashboard build their server-side queries here, for the demo API (job `api`)
and for your own API (job `target`, the endpoints of TARGET_METRICS), so a figure has one definition.
"""

from collections.abc import Callable
from dataclasses import dataclass

# prometheus.yml's job of the TARGET_METRICS endpoints.
TARGET_JOB = "target"
# A 5xx answer is the server's failure; 4xx are the client's.
SERVER_ERROR = '"5.."'


@dataclass(frozen=True)
class Convention:
    key: str  # a short id, in report.json
    name: str  # as the report names it
    histogram: str  # the request-duration histogram's base name (its _bucket, _count series)
    status: str  # the label that holds the status code
    counter: str  # the requests counter: its own, or the histogram's _count
    seconds_per_unit: float = 1.0  # the histogram's unit in seconds

    def request_rate(self, selector: str, window: str) -> str:
        return f"sum(rate({self.counter}{{{selector}}}{window}))"

    def server_error_rate(self, selector: str, window: str) -> str:
        """5xx per second; zero (not nothing) while requests are served without a 5xx series yet."""
        errors = f"{self.status}=~{SERVER_ERROR}"
        return (
            f"sum(rate({self.counter}{{{selector}, {errors}}}{window}))"
            f" or (sum(rate({self.counter}{{{selector}}}{window})) * 0)"
        )

    def error_ratio(self, selector: str, window: str) -> str:
        return f"({self.server_error_rate(selector, window)}) / {self.request_rate(selector, window)}"

    def bucket_rates(self, selector: str, window: str) -> str:
        """Bucket rates by `le`, in the histogram's own unit (`seconds_per_unit` converts)."""
        return f"sum by (le) (rate({self.histogram}_bucket{{{selector}}}{window}))"

    def latency_quantile(self, q: float, selector: str, window: str) -> str:
        """In seconds."""
        quantile = f"histogram_quantile({q}, {self.bucket_rates(selector, window)})"
        return quantile if self.seconds_per_unit == 1.0 else f"{quantile} * {self.seconds_per_unit:g}"


# In the order they are preferred when a service exports several.
CONVENTIONS = (
    # prometheus-fastapi-instrumentator (the demo API's): handler, method, status ("2xx" or "200").
    Convention(
        "instrumentator",
        "prometheus-fastapi-instrumentator",
        "http_request_duration_seconds",
        "status",
        "http_requests_total",
    ),
    # OpenTelemetry's HTTP server histogram (semantic conventions 1.21 on), through its Prometheus exporter.
    Convention(
        "otel",
        "OpenTelemetry HTTP server",
        "http_server_request_duration_seconds",
        "http_response_status_code",
        "http_server_request_duration_seconds_count",
    ),
    # The same before 1.21: milliseconds.
    Convention(
        "otel_ms",
        "OpenTelemetry HTTP server (milliseconds, before semantic conventions 1.21)",
        "http_server_duration_milliseconds",
        "http_status_code",
        "http_server_duration_milliseconds_count",
        seconds_per_unit=0.001,
    ),
)
INSTRUMENTATOR = CONVENTIONS[0]


def any_convention(query: Callable[[Convention], str]) -> str:
    """One query over every convention, the first one that has data winning (PromQL `or`): for the
    dashboards, which cannot ask first which convention a service follows."""
    return " or ".join(f"({query(convention)})" for convention in CONVENTIONS)


def detect(has_data: Callable[[Convention], bool]) -> Convention | None:
    """The first convention the service's series follow, or None."""
    return next((c for c in CONVENTIONS if has_data(c)), None)


def cpu_cores(selector: str, window: str) -> str:
    """CPU in cores (seconds of CPU per second) from the `process_*` series client libraries export."""
    return f"sum(rate(process_cpu_seconds_total{{{selector}}}{window}))"


def resident_memory(selector: str) -> str:
    return f"sum(process_resident_memory_bytes{{{selector}}})"
