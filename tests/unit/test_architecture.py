"""The import contracts of pyproject.toml ([tool.importlinter]): each side of the package imports only
what it may (docs/architecture.md). Run here so that `make test` fails on an import across a boundary."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    # cwd=root: the contracts come from root's pyproject.toml; PYTHONPATH: lab is imported from root.
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_import_keeps_to_its_side():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_import_of_locust_in_lab_core_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "lab", tmp_path / "lab")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    yamlconf = tmp_path / "lab" / "core" / "yamlconf.py"
    yamlconf.write_text("import locust  # noqa: F401\n" + yamlconf.read_text())
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "lab.core is shared and pure" in result.stdout and "BROKEN" in result.stdout
    assert "lab.core.yamlconf -> locust" in result.stdout
