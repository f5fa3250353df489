"""Locust loads this file with -f next to the locustfile: it plugs Load Lab into Locust."""

import lab.plugin  # noqa: F401
