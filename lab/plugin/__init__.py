"""The Locust plugin: Locust loads compose/locust/lab_plugin.py (`-f LOCUSTFILE,lab_plugin.py`) in the
master and the workers, which calls `register(events)`.

Each module registers its own event listeners; the order matters where listeners of one event build
on each other (the run exists before the exporter, scenarios and verdicts use it). Importing this
package or one of its modules registers nothing: a test or a locustfile can use one module alone.
"""

import importlib

PLUGIN_MODULES = (
    "lab.plugin.runs",
    "lab.plugin.exporter",
    "lab.plugin.arrivals",
    "lab.plugin.trim",
    "lab.plugin.checkpoint",
    # Before webauth: a foreign page gets 403, never a password prompt.
    "lab.plugin.webguard",
    "lab.plugin.webauth",
    "lab.plugin.scenarios",
    "lab.plugin.verdicts",
    "lab.plugin.handshake",
)


def register(events) -> None:
    """Add every module's listeners to Locust's `events`, once a process (Locust may load the plugin
    file and a locustfile that registers it too)."""
    if getattr(events, "_lab_registered", False):
        return
    for name in PLUGIN_MODULES:
        importlib.import_module(name).register(events)
    events._lab_registered = True
