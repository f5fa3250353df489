"""lab.plugin.webguard's rules: which Hosts the UI answers to, which Origins and Referers may change
state, and how often refusals are logged."""

import logging

import pytest

from lab.plugin.webguard import Allowed, Refusals, refusal

LAN = Allowed.from_settings(
    {"LAB_BIND": "10.0.0.5", "LAB_WEB_PORT": "18089", "LAB_WEB_HOSTS": "lab.example, Proxy.Example:443"},
    web_host="",
    web_port=8089,
)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8089",
        "127.0.0.1:18089",
        "127.0.0.1",
        "LOCALHOST:8089",
        "localhost.:8089",
        "[::1]:8089",
        "127.0.0.2:8089",
        "10.0.0.5:18089",
        "lab.example",
        "lab.example:8443",
        "proxy.example",
    ],
)
def test_hosts_the_lab_serves(host):
    assert LAN.host_ok(host)


@pytest.mark.parametrize(
    "host",
    ["", "evil.example", "evil.example:8089", "localhost.evil.example", "127.0.0.1:9090", "10.0.0.6:8089",
     "0.0.0.0:8089", "[::1", "127.0.0.1:port", "lab.example.evil"],
)  # fmt: skip
def test_hosts_it_does_not(host):
    assert not LAN.host_ok(host)


def test_a_wildcard_bind_adds_no_name_and_a_specific_web_host_does():
    assert Allowed.from_settings({"LAB_BIND": "0.0.0.0"}).names == {"localhost"}
    assert Allowed.from_settings({"LAB_BIND": "::"}, web_host="*").names == {"localhost"}
    assert "10.1.1.1" in Allowed.from_settings({}, web_host="10.1.1.1").names
    assert "fe80::1" in Allowed.from_settings({"LAB_BIND": "[fe80::1]"}).names


HOST = {"Host": "127.0.0.1:8089"}


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/stats/requests", {}),
        ("GET", "/", {"Referer": "http://docs.example/"}),  # a link from elsewhere opens the UI
        ("POST", "/swarm", {}),  # curl, lab run
        ("POST", "/swarm", {"Origin": "http://127.0.0.1:8089"}),
        ("POST", "/stop", {"Referer": "http://127.0.0.1:8089/?tab=charts"}),
        ("GET", "/stats/requests", {"Origin": "http://127.0.0.1:8089"}),
        ("OPTIONS", "/stats/requests", {}),
    ],
)
def test_allowed(method, path, headers):
    assert refusal(LAN, method, path, {**HOST, **headers}) is None


@pytest.mark.parametrize(
    ("method", "path", "headers", "reason"),
    [
        ("POST", "/swarm", {"Origin": "http://evil.example"}, "Origin 'http://evil.example' is another site"),
        ("POST", "/swarm", {"Origin": "null"}, "Origin 'null' is another site"),
        ("POST", "/swarm", {"Origin": "http://localhost:8089"}, "Origin 'http://localhost:8089' is another"),
        ("POST", "/swarm", {"Origin": "file://127.0.0.1:8089"}, "Origin 'file://127.0.0.1:8089' is another"),
        ("POST", "/swarm", {"Referer": "http://evil.example/x"}, "Referer 'http://evil.example/x' is another"),
        ("GET", "/stop", {"Referer": "http://evil.example/x"}, "Referer 'http://evil.example/x' is another"),
        ("GET", "/stats/reset", {"Origin": "http://evil.example"}, "Origin 'http://evil.example' is another"),
        ("GET", "/stats/requests", {"Origin": "http://evil.example"}, "Origin 'http://evil.example' is another"),
        ("DELETE", "/anything", {"Referer": "http://evil.example/"}, "Referer 'http://evil.example/' is another"),
        ("GET", "/", {"Host": "evil.example"}, "Host 'evil.example' is not one this lab serves"),
    ],
)  # fmt: skip
def test_refused(method, path, headers, reason):
    assert refusal(LAN, method, path, {**HOST, **headers}).startswith(reason)


def test_refusals_are_logged_once_per_interval_with_a_count_of_the_rest(caplog):
    now = [0.0]
    refusals = Refusals(interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="lab.plugin.webguard"):
        for second in range(0, 130):
            now[0] = float(second)
            refusals.note("POST", "/swarm", "why")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "lab webguard: refused POST /swarm: why",
        "lab webguard: refused POST /swarm: why (and 59 more refused since the last report)",
        "lab webguard: refused POST /swarm: why (and 59 more refused since the last report)",
    ]
