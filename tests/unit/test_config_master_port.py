"""LAB_EXPOSE_MASTER=1 adds compose/master-port.yml, which publishes the worker port on LAB_MASTER_BIND."""

import pytest

from lab.core.config import MASTER_PORT_FILE
from tests.unit.test_config import ROOT, lab_in


def files(command: list[str]) -> list[str]:
    return [command[i + 1] for i, part in enumerate(command) if part == "-f"]


@pytest.mark.parametrize(("value", "exposed"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_the_master_port_file_is_added_only_when_asked(tmp_path, value, exposed):
    lab = lab_in(tmp_path, LAB_EXPOSE_MASTER=value)
    expected = [str(ROOT / "docker-compose.load-test.yml")]
    if exposed:
        expected.append(str(ROOT / MASTER_PORT_FILE))
    assert files(lab.compose_command("up")) == expected
    assert lab.compose_command("up")[-1] == "up"


def test_the_setting_may_live_in_env_file(tmp_path):
    lab = lab_in(tmp_path)
    lab.env_file.write_text("LAB_EXPOSE_MASTER=1\nLAB_MASTER_BIND=10.0.0.5\n")
    assert files(lab.compose_command())[-1] == str(ROOT / MASTER_PORT_FILE)


def test_the_master_port_file_publishes_only_on_the_given_address():
    text = (ROOT / MASTER_PORT_FILE).read_text()
    assert '"${LAB_MASTER_BIND:?' in text and ":${LOCUST_MASTER_PORT:-5557}:5557" in text
