"""The Locust web UI answers only its own pages: cross-site requests and DNS rebinding are refused.

A web page the user visits can make their browser send requests to the UI: a form-encoded POST is a
"simple request" (no CORS preflight), and cached Basic credentials go with it, so a password alone
does not stop a foreign page from starting a load test or stopping a soak. A page whose name resolves
to 127.0.0.1 (DNS rebinding) can even read the answers. Two rules, on every route of the master's web
server (Flask's `before_request`, so routes added later are covered too):

- Host: a request must name a host the lab serves: loopback, LAB_BIND, Locust's --web-host, or a
  name in LAB_WEB_HOSTS (comma-separated; for a LAB_BIND of 0.0.0.0, or a reverse proxy). Loopback and
  LAB_BIND names must come with the UI's port (Locust's --web-port, or LAB_WEB_PORT where Compose
  publishes it) or none; LAB_WEB_HOSTS names with any port, since a proxy may sit in front.
- Origin: a request with an Origin header must come from the UI's own origin (the Host it was sent
  to); a state-changing request (any method but GET, HEAD, OPTIONS, and the routes that change state
  whatever the method) without Origin must not carry another site's Referer. With neither header
  (curl, `lab run`, scripts: no browser page involved) the Host rule alone decides.

A refused request gets 403 and a one-line JSON reason before any view runs, so nothing changes; the
refusals are logged at most once a minute, so a hostile page cannot flood the log.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Response, request

logger = logging.getLogger(__name__)

HOSTS_ENV = "LAB_WEB_HOSTS"
# The port the UI is published on when it differs from the one Locust listens on (Compose maps
# LOCUST_WEB_PORT on the host to 8089 in the container).
PORT_ENV = "LAB_WEB_PORT"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Locust's routes that start, stop or reset a test: guarded whatever the method (older Locust versions
# and custom routes have answered GET on some of them).
STATE_CHANGING_PATHS = frozenset({"/swarm", "/stop", "/stats/reset", "/user"})
LOOPBACK_NAMES = frozenset({"localhost"})
WILDCARD = frozenset({"", "*", "0.0.0.0", "::"})
LOG_INTERVAL = 60.0


def split_host(host: str) -> tuple[str, int | None]:
    """("name", port or None) from a Host header or a URL's netloc; IPv6 literals lose their brackets."""
    try:
        parts = urlsplit(f"//{host.strip()}")
        return (parts.hostname or "").rstrip("."), parts.port
    except ValueError:  # a port that is not a number, an unbalanced bracket
        return "", None


@dataclass(frozen=True)
class Allowed:
    """The names and ports the UI answers to."""

    names: frozenset[str]  # with one of `ports` or no port
    ports: frozenset[int]
    extra: frozenset[str]  # LAB_WEB_HOSTS: with any port

    @classmethod
    def from_settings(cls, settings: Mapping[str, str], web_host: str = "", web_port: int = 8089) -> Allowed:
        names = set(LOOPBACK_NAMES)
        for address in (settings.get("LAB_BIND", ""), web_host):  # an address or a name, with no port
            name = address.strip().strip("[]").lower()
            if name not in WILDCARD:
                names.add(name)
        ports = {web_port}
        published = settings.get(PORT_ENV, "")
        if published.isdigit():
            ports.add(int(published))
        extra = {split_host(h)[0].lower() for h in settings.get(HOSTS_ENV, "").split(",") if h.strip()}
        return cls(frozenset(names), frozenset(ports), frozenset(extra - {""}))

    def host_ok(self, host: str) -> bool:
        name, port = split_host(host)
        name = name.lower()
        if name in self.extra:
            return True
        return (name in self.names or is_loopback_address(name)) and (port is None or port in self.ports)


def is_loopback_address(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def refusal(allowed: Allowed, method: str, path: str, headers: Mapping[str, str]) -> str | None:
    """Why a request is refused, or None to let it through."""
    host = headers.get("Host", "")
    if not allowed.host_ok(host):
        return (
            f"Host {host!r} is not one this lab serves: open the UI by its loopback address, "
            f"or add the name to {HOSTS_ENV} in the lab's .env"
        )
    # A browser sends Origin on every cross-origin fetch, GETs included: refused whatever the method,
    # since Locust answers every route with `Access-Control-Allow-Origin: *` (flask-cors) and would let
    # the page read it.
    origin = headers.get("Origin")
    if origin is not None and not same_origin(origin, host):
        return f"Origin {origin!r} is another site: the UI answers only its own pages"
    if method.upper() in SAFE_METHODS and path not in STATE_CHANGING_PATHS:
        return None  # a link from another site (a foreign Referer) may open the UI
    referer = headers.get("Referer")
    if origin is None and referer is not None and not same_origin(referer, host):
        return f"Referer {referer!r} is another site: start, stop and reset from the UI itself"
    return None  # the UI's own page, or no browser page at all (curl, `lab run`): the Host rule decided


def same_origin(url: str, host: str) -> bool:
    """Whether an Origin or Referer names the host the request was sent to ("null" never does)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


class Refusals:
    """Logs refusals at most once per interval, with how many were not logged since."""

    def __init__(self, interval: float = LOG_INTERVAL, clock=time.monotonic):
        self.interval, self.clock = interval, clock
        self.last: float | None = None
        self.unlogged = 0

    def note(self, method: str, path: str, reason: str) -> None:
        now = self.clock()
        if self.last is not None and now - self.last < self.interval:
            self.unlogged += 1
            return
        more = f" (and {self.unlogged} more refused since the last report)" if self.unlogged else ""
        logger.warning("lab webguard: refused %s %s: %s%s", method, path, reason, more)
        self.last, self.unlogged = now, 0


def protect(app, allowed: Allowed, refusals: Refusals) -> None:
    @app.before_request
    def refuse_foreign_requests():
        reason = refusal(allowed, request.method, request.path, request.headers)
        if reason is None:
            return None
        refusals.note(request.method, request.path, reason)
        # json.dumps, not jsonify: Locust runs Flask in debug mode, where jsonify spreads it over lines.
        body = json.dumps({"success": False, "message": reason}) + "\n"
        return Response(body, 403, mimetype="application/json")


def on_init(environment, web_ui=None, **_kw) -> None:
    if web_ui is None:
        return
    options = environment.parsed_options
    allowed = Allowed.from_settings(
        os.environ,
        web_host=getattr(options, "web_host", "") or "",
        web_port=getattr(options, "web_port", 8089),
    )
    protect(web_ui.app, allowed, Refusals())


def register(events) -> None:
    events.init.add_listener(on_init)
