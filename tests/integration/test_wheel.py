"""The wheel that `pip` builds holds every file of the `lab` package, and each sub-package imports from it."""

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lab"


def test_the_wheel_holds_every_sub_package_and_its_data(tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("loadlab-*.whl")

    sources = {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    with zipfile.ZipFile(wheel) as archive:
        packed = {name for name in archive.namelist() if name.startswith("lab/")}
    assert sources - packed == set(), "files of lab/ missing from the wheel"

    # A fresh venv with the wheel installed; the dependencies come from this environment, after the venv's
    # own site-packages, so `lab` is the wheel's and nothing else.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin/python")
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    own = Path(sysconfig.get_paths(vars={"base": str(venv)})["purelib"])
    # A plain path: this environment's own .pth files (the editable install of lab) stay unread.
    (own / "project-dependencies.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n")

    packages = sorted(".".join(init.parent.relative_to(ROOT).parts) for init in PACKAGE.rglob("__init__.py"))
    assert {"lab", "lab.core", "lab.plugin", "lab.cli", "lab.report", "lab.dashboards"} <= set(packages)
    probe = (
        "import importlib\n"
        f"for name in {packages!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(own)!r}), (name, module.__file__)\n"
    )
    result = subprocess.run([python, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
