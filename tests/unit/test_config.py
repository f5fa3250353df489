"""Settings: .env parsing, first-run generation of secrets, and Compose's order of precedence."""

import stat
from pathlib import Path

import pytest

from lab.core.config import GENERATED, Lab, parse_env_file
from lab.core.errors import LabError

ROOT = Path(__file__).resolve().parents[2]


def lab_in(tmp_path, **environ) -> Lab:
    return Lab.from_environment({"LAB_HOME": str(ROOT), "LAB_ENV_FILE": str(tmp_path / ".env"), **environ})


def test_parse_env_file_reads_values_comments_and_quotes(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# comment\n\nA=1\nB='two words'\nC=\"x=y\"\nD=\n")
    assert parse_env_file(path) == {"A": "1", "B": "two words", "C": "x=y", "D": ""}


@pytest.mark.parametrize("line", ["just words", "1KEY=value", "KEY value", "export"])
def test_parse_env_file_names_the_bad_line(tmp_path, line):
    path = tmp_path / ".env"
    path.write_text(f"A=1\n{line}\n")
    with pytest.raises(LabError, match=rf"{path}:2 is not KEY=VALUE.*fix or delete that line"):
        parse_env_file(path)


def test_first_run_generates_every_secret_and_keeps_the_example_settings(tmp_path):
    lab = lab_in(tmp_path)
    assert lab.ensure_env_file() is True
    values = parse_env_file(lab.env_file)
    example = parse_env_file(ROOT / ".env.example")
    for key in GENERATED:
        assert values[key], key
    secrets = [
        values[k]
        for k in ("GRAFANA_ADMIN_PASSWORD", "POSTGRES_PASSWORD", "API_SECRET_KEY", "SEED_USER_PASSWORD")
    ]
    assert len(set(secrets)) == len(secrets)
    assert all(example[k] == "" for k in ("GRAFANA_ADMIN_PASSWORD", "POSTGRES_PASSWORD", "API_SECRET_KEY"))
    assert {k: v for k, v in values.items() if k not in GENERATED} == {
        k: v for k, v in example.items() if k not in GENERATED
    }
    assert stat.S_IMODE(lab.env_file.stat().st_mode) == 0o600


def test_later_runs_keep_what_is_there_and_fill_only_what_is_empty(tmp_path):
    lab = lab_in(tmp_path)
    lab.env_file.write_text("GRAFANA_PORT=4000\nPOSTGRES_PASSWORD=mine\nAPI_SECRET_KEY=\n")
    assert lab.ensure_env_file() is True
    values = parse_env_file(lab.env_file)
    assert values["GRAFANA_PORT"] == "4000" and values["POSTGRES_PASSWORD"] == "mine"
    assert values["API_SECRET_KEY"] and values["GRAFANA_ADMIN_PASSWORD"]
    before = lab.env_file.read_text()
    assert lab.ensure_env_file() is False
    assert lab.env_file.read_text() == before


def test_a_malformed_env_file_is_refused_and_left_as_it_is(tmp_path):
    lab = lab_in(tmp_path)
    lab.env_file.write_text("GOOD=1\nthis is not a setting\n")
    with pytest.raises(LabError, match=":2 is not KEY=VALUE"):
        lab.ensure_env_file()
    assert lab.env_file.read_text() == "GOOD=1\nthis is not a setting\n"


def test_environment_beats_offline_env_beats_dot_env(tmp_path):
    (tmp_path / ".env").write_text(
        "LAB_OFFLINE=1\nPROMETHEUS_IMAGE=from-dotenv\nGRAFANA_PORT=4000\nLAB_BIND=0.0.0.0\n"
    )
    lab = lab_in(tmp_path, GRAFANA_PORT="5000")
    assert lab.offline
    assert (
        lab.setting("PROMETHEUS_IMAGE", "")
        == parse_env_file(ROOT / "compose/offline/offline.env")["PROMETHEUS_IMAGE"]
    )
    assert lab.setting("GRAFANA_PORT", "3000") == "5000"
    assert (
        lab.url("GRAFANA_PORT", "3000") == "http://127.0.0.1:5000"
    )  # a wildcard bind is reached on loopback
    command = lab.compose_command("ps")
    assert command[-1] == "ps" and command.count("--env-file") == 2


def test_no_compose_file_is_a_clear_error(tmp_path):
    with pytest.raises(LabError, match="run lab from the repository root or set LAB_HOME"):
        Lab.from_environment({"LAB_HOME": str(tmp_path)})
