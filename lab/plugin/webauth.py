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

from flask import Response, request

from lab.core.webauth import PASSWORD_ENV, USER_ENV, credentials

logger = logging.getLogger(__name__)

REALM = "Load Lab"


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
