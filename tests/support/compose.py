"""Reading the compose files as Compose v2 does, with a throwaway .env holding every secret."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATED_SECRETS = (
    "GRAFANA_ADMIN_PASSWORD",
    "POSTGRES_PASSWORD",
    "POSTGRES_API_PASSWORD",
    "POSTGRES_EXPORTER_PASSWORD",
    "API_SECRET_KEY",
    "SEED_USER_PASSWORD",
)

needs_compose = pytest.mark.skipif(
    not shutil.which("docker")
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode,
    reason="needs the docker CLI with Compose v2",
)


def env_file(tmp_path: Path, settings: str = "") -> Path:
    """.env.example with every secret filled in, then `settings` (KEY=VALUE lines) on top."""
    path = tmp_path / ".env"
    secrets = "".join(f"{key}=x\n" for key in GENERATED_SECRETS)
    path.write_text((ROOT / ".env.example").read_text() + secrets + settings)
    return path


def run_compose(command: list[str]) -> subprocess.CompletedProcess:
    """Compose with a bare environment, so that only the env files given decide the settings."""
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/usr/local/bin:/bin", "HOME": str(Path.home())},
    )
