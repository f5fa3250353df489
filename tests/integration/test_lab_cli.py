"""`lab` refuses bad set-ups with one line naming the problem and the fix, and starts nothing."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def engine_reachable() -> bool:
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return True
    except Exception:
        return False


needs_engine = pytest.mark.skipif(not engine_reachable(), reason="needs a reachable Docker engine")


def lab(tmp_path, *args, **env) -> subprocess.CompletedProcess:
    environ = {
        **os.environ,
        "LAB_HOME": str(ROOT),
        "LAB_ENV_FILE": str(tmp_path / ".env"),
        "LAB_PROJECT": "loadlab-cli-test",
        "LAB_RESULTS_DIR": str(tmp_path / "results"),
        "LAB_OFFLINE": "0",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], env=environ, capture_output=True, text=True, timeout=60
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_up_without_an_engine_names_it_and_writes_nothing(tmp_path):
    result = lab(tmp_path, "up", DOCKER_HOST=f"unix://{tmp_path}/no-such.sock")
    assert_one_line_error(result, "no Docker engine is reachable", "start it")
    assert not (tmp_path / ".env").exists()


def test_up_with_a_malformed_env_file_names_the_line(tmp_path):
    (tmp_path / ".env").write_text("LAB_BIND=127.0.0.1\nGRAFANA_PORT 3000\n")
    result = lab(tmp_path, "up")
    assert_one_line_error(result, ".env:2 is not KEY=VALUE", "fix or delete that line")
    assert (tmp_path / ".env").read_text() == "LAB_BIND=127.0.0.1\nGRAFANA_PORT 3000\n"


def test_up_rejects_a_worker_count_below_one(tmp_path):
    result = lab(tmp_path, "up", "--workers", "0")
    assert result.returncode == 2 and "is not a whole number of at least 1" in result.stderr


@needs_engine
def test_up_with_compose_v1_only_says_to_install_v2(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real_docker = subprocess.run(["which", "docker"], capture_output=True, text=True).stdout.strip()
    (bin_dir / "docker").write_text(
        f'#!/bin/sh\nif [ "$1" = compose ]; then echo "docker: \'compose\' is not a docker command." >&2; exit 1; fi\n'
        f'exec {real_docker} "$@"\n'
    )
    (bin_dir / "docker-compose").write_text(
        "#!/bin/sh\necho 'docker-compose version 1.29.2, build 5becea4c'\n"
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    result = lab(tmp_path, "up", PATH=f"{bin_dir}:/usr/bin:/bin")
    assert_one_line_error(
        result, "Docker Compose v2 is missing", f"found Compose v1 at {bin_dir}/docker-compose"
    )


@needs_engine
def test_up_with_a_taken_port_names_the_port_and_the_setting(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = lab(tmp_path, "up", LOCUST_WEB_PORT=str(port))
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is already taken", "set LOCUST_WEB_PORT")
    import docker

    assert (
        docker.from_env().containers.list(
            all=True, filters={"label": "com.docker.compose.project=loadlab-cli-test"}
        )
        == []
    )


@needs_engine
def test_status_of_a_lab_that_is_not_running(tmp_path):
    result = lab(tmp_path, "status")
    assert result.returncode == 1
    assert "is not running: start it with `lab up`" in result.stdout
