"""The built wheel installs one package, candlecast: the top-level folders ride inside it as candlecast.<name>.

`pip install .` must put nothing generic (`models`, `flows`, `tasks`, ...) into site-packages, where it
would collide with any other package of that name. The wheel is what pip installs, so its file list is
checked: built offline from a copy of the sources (setuptools from the venv, no build isolation).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["pyproject.toml", "README.md", "candlecast", "models", "tasks", "flows", "expectations", "deployments"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            # symlinks=True: candlecast/<name> stays a link to ../<name>, as in a checkout
            shutil.copytree(path, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), "."]
    subprocess.run(cmd, cwd=src, check=True, timeout=300)
    (built,) = out.glob("candlecast-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def test_every_file_installs_under_candlecast(wheel):
    names = wheel.namelist()
    strays = [n for n in names if n.split("/")[0] != "candlecast" and ".dist-info/" not in n]
    assert not strays, strays
    for path in ("candlecast/flows/ingest.py", "candlecast/models/lstm.py", "candlecast/deployments/cli.py"):
        assert path in names, path
    for folder in ("models", "tasks", "flows", "expectations", "deployments"):
        assert f"candlecast/{folder}/__init__.py" in names, folder


def test_the_console_script_is_the_namespaced_cli(wheel):
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "candlecast = candlecast.deployments.cli:app" in text.splitlines()
