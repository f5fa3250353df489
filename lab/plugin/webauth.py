"""A password on the Locust web UI and its HTTP API, when LOCUST_WEB_PASSWORD is set.

HTTP Basic authentication (user LOCUST_WEB_USER, default "lab") on every route of the master's web
server, through Flask's own `before_request` hook. Not Locust's `--web-login`: that one is a login
form with a session cookie and needs a flask-login user model written into the locustfile, while
the lab's own clients (`lab run`, the end-to-end tests, curl) call the master's HTTP API; Basic
authentication serves them and a browser alike. It is as safe as the network it crosses: beyond a
trusted network, put TLS in front (Locust's --tls-cert/--tls-key, or a reverse proxy).

The exporter (port 9646) is not behind it: it is not published, and Prometheus scrapes it inside the
stack's network.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Mapping

logger = logging.getLogger(__name__)

USER_ENV = "LOCUST_WEB_USER"
PASSWORD_ENV = "LOCUST_WEB_PASSWORD"
DEFAULT_USER = "lab"
REALM = "Load Lab"


def credentials(settings: Mapping[str, str]) -> tuple[str, str] | None:
    """(user, password) from settings (the environment, or the lab's .env); None when no password is set."""
    password = settings.get(PASSWORD_ENV) or ""
    if not password:
        return None
    return settings.get(USER_ENV) or DEFAULT_USER, password


def client_auth(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """The credentials a client of the master sends: from the environment, else from the lab's .env."""
    environ = os.environ if environ is None else environ
    if PASSWORD_ENV in environ:
        return credentials(environ)
    from lab.core.config import Lab
    from lab.core.errors import LabError

    try:
        return credentials(Lab.from_environment(environ).settings())
    except LabError:
        return None  # not in a lab checkout (LOCUST_URL pointing elsewhere): no credentials to send


def authorized(authorization, expected: tuple[str, str]) -> bool:
    """Whether a request's parsed Authorization header carries the expected user and password."""
    if authorization is None or authorization.type != "basic":
        return False
    user, password = authorization.get("username") or "", authorization.get("password") or ""
    # compare_digest on both, always: the time taken tells nothing about which part was wrong.
    user_ok = hmac.compare_digest(user.encode(), expected[0].encode())
    password_ok = hmac.compare_digest(password.encode(), expected[1].encode())
    return user_ok and password_ok


def protect(app, expected: tuple[str, str]) -> None:
    from flask import Response, request

    @app.before_request
    def require_password():
        if authorized(request.authorization, expected):
            return None
        return Response(
            f"Load Lab: log in with {USER_ENV} and {PASSWORD_ENV} from the lab's .env\n",
            401,
            {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
        )


def on_init(environment, web_ui=None, **_kw) -> None:
    expected = credentials(os.environ)
    if web_ui is None or expected is None:
        return
    protect(web_ui.app, expected)
    logger.info("lab webauth: the web UI asks for user %r and LOCUST_WEB_PASSWORD", expected[0])


def register(events) -> None:
    events.init.add_listener(on_init)
