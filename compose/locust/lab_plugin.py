"""Locust loads this file with -f next to the locustfile: it plugs Load Lab into Locust."""

from locust import events

from lab.plugin import register

register(events)
