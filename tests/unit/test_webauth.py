"""Who may use the Locust web UI: the credentials' sources, the header check, and `lab up`'s warning."""

from pathlib import Path

import pytest
from werkzeug.datastructures import Authorization

from lab.cli.run import client_auth
from lab.cli.stack import _warn_if_exposed
from lab.core.config import Lab
from lab.core.webauth import credentials
from lab.plugin.webauth import authorized

REPO = Path(__file__).resolve().parent.parent.parent


def test_no_password_means_no_protection():
    assert credentials({}) is None
    assert credentials({"LOCUST_WEB_USER": "x", "LOCUST_WEB_PASSWORD": ""}) is None


def test_the_user_defaults_to_lab():
    assert credentials({"LOCUST_WEB_PASSWORD": "p"}) == ("lab", "p")
    assert credentials({"LOCUST_WEB_USER": "ann", "LOCUST_WEB_PASSWORD": "p"}) == ("ann", "p")


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (Authorization("basic", {"username": "lab", "password": "s3cret"}), True),
        (Authorization("basic", {"username": "lab", "password": "s3cre"}), False),
        (Authorization("basic", {"username": "lab", "password": "s3cret "}), False),
        (Authorization("basic", {"username": "admin", "password": "s3cret"}), False),
        (Authorization("basic", {"username": "lab"}), False),
        (Authorization("bearer", token="s3cret"), False),
        (None, False),
    ],
)
def test_only_basic_auth_with_both_parts_right_is_authorized(header, ok):
    assert authorized(header, ("lab", "s3cret")) is ok


def lab_env(tmp_path, text: str, **environ) -> dict:
    (tmp_path / ".env").write_text(text)
    return {"LAB_HOME": str(REPO), "LAB_ENV_FILE": str(tmp_path / ".env"), **environ}


def test_clients_take_the_password_from_the_environment_first(tmp_path):
    environ = lab_env(tmp_path, "LOCUST_WEB_PASSWORD=from-file\n", LOCUST_WEB_PASSWORD="from-env")
    assert client_auth(environ) == ("lab", "from-env")


def test_clients_take_the_password_from_the_labs_env_file(tmp_path):
    environ = lab_env(tmp_path, "LOCUST_WEB_USER=ops\nLOCUST_WEB_PASSWORD=from-file\n")
    assert client_auth(environ) == ("ops", "from-file")
    assert client_auth(lab_env(tmp_path, "LOCUST_WEB_PASSWORD=\n")) is None


def test_outside_a_lab_checkout_clients_send_nothing(tmp_path):
    assert client_auth({"LAB_HOME": str(tmp_path)}) is None


def warnings(tmp_path, capsys, text: str) -> str:
    (tmp_path / ".env").write_text(text)
    _warn_if_exposed(Lab(home=REPO, env_file=tmp_path / ".env", project="t", environ={}))
    return capsys.readouterr().err


def test_lab_up_warns_when_the_locust_ui_is_exposed_without_a_password(tmp_path, capsys):
    err = warnings(tmp_path, capsys, "LAB_BIND=0.0.0.0\nLOCUST_WEB_PASSWORD=\n")
    assert "LAB_BIND=0.0.0.0 publishes" in err
    assert "the Locust UI on 0.0.0.0 can start and stop load with no login: set LOCUST_WEB_PASSWORD" in err


def test_lab_up_does_not_warn_about_the_ui_once_it_has_a_password(tmp_path, capsys):
    err = warnings(tmp_path, capsys, "LAB_BIND=10.0.0.5\nLOCUST_WEB_PASSWORD=pw\n")
    assert "LAB_BIND=10.0.0.5 publishes" in err and "LOCUST_WEB_PASSWORD" not in err


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_lab_up_says_nothing_on_loopback(tmp_path, capsys, bind):
    assert warnings(tmp_path, capsys, f"LAB_BIND={bind}\n") == ""
