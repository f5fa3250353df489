"""The report test's users under the lab's capacity search shape (run headless with --scenario capacity)."""

from report_locustfile import Visitor  # noqa: F401 - the users
