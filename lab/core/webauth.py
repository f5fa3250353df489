"""The web UI's password as the master (lab.plugin.webauth) and its clients (`lab run`) both read it:
HTTP Basic with user LOCUST_WEB_USER (default "lab") and LOCUST_WEB_PASSWORD, from the environment or
the lab's .env."""

from collections.abc import Mapping

USER_ENV = "LOCUST_WEB_USER"
PASSWORD_ENV = "LOCUST_WEB_PASSWORD"
DEFAULT_USER = "lab"


def credentials(settings: Mapping[str, str]) -> tuple[str, str] | None:
    """(user, password) from settings (the environment, or the lab's .env); None when no password is set."""
    password = settings.get(PASSWORD_ENV) or ""
    if not password:
        return None
    return settings.get(USER_ENV) or DEFAULT_USER, password
