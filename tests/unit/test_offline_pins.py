"""Every upstream image the lab pins and its offline stand-in are the same release series.

The compose files name each upstream image as `${VAR:-image:tag}` and compose/offline/offline.env sets
VAR to the stand-in, whose tag is the series it holds (compose/offline/build.sh checks Debian's package
against it). The Dockerfiles' `ARG BASE=` defaults stand for LAB_BASE_IMAGE.
"""

import re
import shutil
from pathlib import Path

import pytest

from lab.core.config import parse_env_file

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("docker-compose.load-test.yml", "compose/workers.yml")
DOCKERFILES = ("compose/api/Dockerfile", "compose/locust/Dockerfile")
OFFLINE_ENV = "compose/offline/offline.env"

# Images with both an upstream pin and a stand-in: none of them may go unchecked.
STANDINS = {
    "LAB_BASE_IMAGE",
    "POSTGRES_IMAGE",
    "REDIS_IMAGE",
    "PROMETHEUS_IMAGE",
    "POSTGRES_EXPORTER_IMAGE",
    "REDIS_EXPORTER_IMAGE",
    "NODE_EXPORTER_IMAGE",
    "PROCESS_EXPORTER_IMAGE",
}
_DEFAULT = re.compile(r"\$\{(?P<var>\w+):-(?P<image>[^}]+)\}")
_ARG_BASE = re.compile(r"^ARG BASE=(?P<image>\S+)$", re.MULTILINE)


def version(image: str) -> tuple[int, ...]:
    """postgres:17.12 -> (17, 12); oliver006/redis_exporter:v1.69.0-alpine -> (1, 69, 0); x:3.13-trixie -> (3, 13)."""
    tag = image.rpartition(":")[2].removeprefix("v").partition("-")[0]
    return tuple(int(part) for part in tag.split("."))


def upstream_pins(root: Path) -> list[tuple[str, str, str]]:
    """(where, VAR, upstream image) for every image default the compose files and Dockerfiles name."""
    pins = []
    for name in COMPOSE_FILES:
        for match in _DEFAULT.finditer((root / name).read_text()):
            if match["var"].endswith("_IMAGE"):
                pins.append((name, match["var"], match["image"]))
    for name in DOCKERFILES:
        for match in _ARG_BASE.finditer((root / name).read_text()):
            pins.append((name, "LAB_BASE_IMAGE", match["image"]))
    return pins


def drift(root: Path) -> list[str]:
    """One line per upstream pin whose version is not in its stand-in's series."""
    standins = parse_env_file(root / OFFLINE_ENV)
    problems = []
    for where, var, upstream in upstream_pins(root):
        if var not in standins:
            continue  # no stand-in (Grafana: the offline stack runs without it)
        series = version(standins[var])
        if version(upstream)[: len(series)] != series:
            problems.append(f"{where}: {var} pins {upstream}, its stand-in {standins[var]} is another series")
    return problems


def test_every_stand_in_has_an_upstream_pin_in_the_compose_file():
    pinned = {var for where, var, _ in upstream_pins(ROOT) if where == COMPOSE_FILES[0]}
    assert pinned >= STANDINS


def test_stand_in_tags_name_major_and_minor():
    # PostgreSQL numbers its major releases with one number (17); everything else is major.minor.
    standins = parse_env_file(ROOT / OFFLINE_ENV)
    for var in STANDINS:
        assert len(version(standins[var])) >= (1 if var == "POSTGRES_IMAGE" else 2), standins[var]


def test_upstream_pins_and_stand_ins_are_the_same_series():
    assert drift(ROOT) == []


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        ("docker-compose.load-test.yml", "redis:8.0.2}", "redis:8.2.1}"),
        ("docker-compose.load-test.yml", "postgres:17.12}", "postgres:18.1}"),
        ("compose/workers.yml", "python:3.13-slim}", "python:3.12-slim}"),
        ("compose/locust/Dockerfile", "ARG BASE=python:3.13-slim", "ARG BASE=python:3.14-slim"),
        (OFFLINE_ENV, "prometheus:3.5\n", "prometheus:2.53\n"),
        (OFFLINE_ENV, "redis-exporter:1.69\n", "redis-exporter:1.86\n"),
        ("docker-compose.load-test.yml", "node-exporter:v1.9.1}", "node-exporter:v1.10.2}"),
        ("docker-compose.load-test.yml", "process-exporter:0.8.7}", "process-exporter:0.7.10}"),
        (OFFLINE_ENV, "node-exporter:1.9\n", "node-exporter:1.11\n"),
    ],
)
def test_a_drifted_pin_fails(tmp_path, path, old, new):
    for name in (*COMPOSE_FILES, *DOCKERFILES, OFFLINE_ENV):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    drifted = tmp_path / path
    text = drifted.read_text()
    assert old in text
    drifted.write_text(text.replace(old, new))
    assert drift(tmp_path) != []
