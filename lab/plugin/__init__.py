"""The Locust plugin: Locust imports this (via compose/locust/lab_plugin.py) in the master and the workers.

Each module registers its own event listeners; the order matters where listeners of one event build
on each other (the run exists before the exporter, scenarios and verdicts use it).
"""

import importlib

from locust import events

PLUGIN_MODULES = (
    "lab.plugin.runs",
    "lab.plugin.exporter",
    "lab.plugin.arrivals",
    "lab.plugin.trim",
    "lab.plugin.webauth",
    "lab.plugin.scenarios",
    "lab.plugin.verdicts",
    "lab.plugin.handshake",
)


def _register_all() -> None:
    # Locust may load the plugin file and a locustfile that imports it too: register once a process.
    if getattr(events, "_lab_registered", False):
        return
    for name in PLUGIN_MODULES:
        importlib.import_module(name).register(events)
    events._lab_registered = True


_register_all()
