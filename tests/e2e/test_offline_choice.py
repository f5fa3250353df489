"""The offline choice is remembered: after an offline first start, `lab up` without LAB_OFFLINE starts
the offline stack (from .env, or inferred when only the offline images are here), never waiting for a
pull that cannot happen. Meaningful on the offline stack only (LAB_OFFLINE=1 for the session)."""

import os
import subprocess
import sys

import pytest

from lab.core.config import parse_env_file
from tests.e2e.conftest import ROOT
from tests.e2e.test_faults import containers

pytestmark = [pytest.mark.e2e, pytest.mark.lifecycle]


def lab_up_without_the_variable(stack) -> subprocess.CompletedProcess:
    env = {key: value for key, value in stack.env.items() if key != "LAB_OFFLINE"}
    return subprocess.run(
        [sys.executable, "-m", "lab", "up"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.mark.skipif(os.environ.get("LAB_OFFLINE") != "1", reason="the session runs the online stack")
def test_lab_up_after_an_offline_start_keeps_the_offline_stack(stack):
    env_file = stack.workdir / ".env"
    offline = parse_env_file(ROOT / "compose/offline/offline.env")
    assert parse_env_file(env_file).get("LAB_OFFLINE") == "1"  # remembered by the session's first lab up

    result = lab_up_without_the_variable(stack)
    assert result.returncode == 0, result.stderr
    (prometheus,) = containers(stack, "prometheus")
    assert prometheus.attrs["Config"]["Image"] == offline["PROMETHEUS_IMAGE"]

    # Forgotten (an .env from before this change): inferred from the images here, and remembered again.
    env_file.write_text(
        "".join(
            line + "\n" for line in env_file.read_text().splitlines() if not line.startswith("LAB_OFFLINE=")
        )
    )
    result = lab_up_without_the_variable(stack)
    assert result.returncode == 0, result.stderr
    assert "using the offline images: the online ones are not here" in result.stdout
    assert parse_env_file(env_file).get("LAB_OFFLINE") == "1"
    (prometheus,) = containers(stack, "prometheus")
    assert prometheus.attrs["Config"]["Image"] == offline["PROMETHEUS_IMAGE"]
