"""`lab workers`: the master address, the compose command of the workers' project, the refusal text."""

import argparse

import pytest

from lab.cli.workers import DEFAULT_MASTER_PORT, compose_command, master_address, refusal_in
from lab.core.config import Lab
from lab.plugin.handshake import VERSION_TIMEOUT, refusal
from tests.unit.test_config import ROOT, lab_in


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.5", ("10.0.0.5", DEFAULT_MASTER_PORT)),
        ("10.0.0.5:15557", ("10.0.0.5", 15557)),
        ("master.internal:5557", ("master.internal", 5557)),
        ("[fd00::5]:6000", ("fd00::5", 6000)),
        ("[fd00::5]", ("fd00::5", DEFAULT_MASTER_PORT)),
        ("fd00::5", ("fd00::5", DEFAULT_MASTER_PORT)),
    ],
)
def test_master_address_takes_host_and_optional_port(text, expected):
    assert master_address(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is not HOST"),
        (":5557", "is not HOST"),
        ("a b:5557", "is not HOST"),
        ("http://m:5557", "is not HOST"),
        ("[fd00::5", "is not HOST"),
        ("[fd00::5]6000", "is not HOST"),
        ("m:", "port must be a number"),
        ("m:0", "port must be a number"),
        ("m:65536", "port must be a number"),
        ("m:x", "port must be a number"),
    ],
)
def test_master_address_refuses_what_is_not_host_port(text, problem):
    with pytest.raises(argparse.ArgumentTypeError, match=problem):
        master_address(text)


def test_workers_are_their_own_project_with_the_lab_settings(tmp_path):
    lab = lab_in(tmp_path, LAB_OFFLINE="1")
    lab.env_file.write_text("LAB_WORKERS_PROJECT=edge-workers\n")
    command = compose_command(lab, "up")
    assert command[:6] == ["docker", "compose", "-p", "edge-workers", "--project-directory", str(ROOT)]
    assert command[6:8] == ["-f", str(ROOT / "compose/workers.yml")]
    assert command[8:] == [
        "--env-file", str(lab.env_file), "--env-file", str(ROOT / "compose/offline/offline.env"), "up",
    ]  # fmt: skip


def test_the_default_workers_project_is_not_the_stack(tmp_path):
    lab = Lab.from_environment({"LAB_HOME": str(ROOT), "LAB_ENV_FILE": str(tmp_path / ".env")})
    assert compose_command(lab)[3] == "loadlab-workers" != lab.project


def test_the_refusal_names_both_versions_or_the_silence():
    assert refusal("vm_1", "2.47.0", "2.47.0") is None
    assert "runs Locust 2.46.7 but the master runs Locust 2.47.0" in refusal("vm_1", "2.46.7", "2.47.0")
    silent = refusal("vm_1", None, "2.47.0")
    assert f"did not report its Locust version within {VERSION_TIMEOUT:g}s" in silent
    assert "2.47.0" in silent


def test_the_reason_is_found_in_the_workers_logs():
    logs = (
        "[2026-11-21 19:00:00,000] w/INFO/locust.main: Starting Locust 2.46.7\n"
        "[2026-11-21 19:00:01,000] w/ERROR/lab.plugin.handshake: lab: the master refused this worker: "
        "worker w_1 runs Locust 2.46.7 but the master runs Locust 2.47.0: start every worker ...\n"
    )
    assert refusal_in(logs) == (
        "worker w_1 runs Locust 2.46.7 but the master runs Locust 2.47.0: start every worker ..."
    )
    assert refusal_in("Starting Locust 2.47.0\nFailed to connect to master") is None
