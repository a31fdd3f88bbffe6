"""requirements.lock is the whole tree pyproject needs, pinned: nothing missing, nothing extra, nothing drifting.

`make lock` writes it (pip-compile over pyproject's dependencies and the locked extras); `make venv` and CI
install exactly it with `pip install --no-deps`; the Docker image installs its runtime part (`-c`, see
tests/unit/test_docker.py). These tests fail when pyproject and the lock disagree, and when the venv the
tests run in is not the lock.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"


def _lock() -> dict[NormalizedName, Version]:
    pins: dict[NormalizedName, Version] = {}
    for line in LOCK.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line.strip())
        assert match, f"not an exact pin: {line!r}"
        name = canonicalize_name(match[1])
        assert name not in pins, f"{name} pinned twice"
        pins[name] = Version(match[2])
    return pins


def _locked_extras() -> list[str]:
    """The extras `make lock` compiles: read from its recipe, so the test follows the Makefile."""
    recipe = re.search(r"^lock:.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.M | re.S)
    assert recipe, "the Makefile has no lock target"
    return re.findall(r"--extra[ =](\w+)", recipe[0])


def _roots() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + [r for e in _locked_extras() for r in extras[e]]]


def _applies(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": extra}) for extra in extras | {""})


@pytest.fixture(scope="module")
def lock() -> dict[NormalizedName, Version]:
    return _lock()


def test_the_locked_extras_are_the_ones_make_installs(lock):
    extras = _locked_extras()
    assert set(extras) == {"dev", "trading"}, extras
    # bench (neuralforecast, darts) is never installed by make test, demo or the image: left unlocked
    assert "neuralforecast" not in lock and "darts" not in lock


def test_every_pyproject_requirement_is_satisfied_by_a_pin(lock):
    for req in _roots():
        name = canonicalize_name(req.name)
        assert name in lock, f"{req} is not in requirements.lock: run make lock"
        assert req.specifier.contains(lock[name], prereleases=True), f"lock pins {name}=={lock[name]}, pyproject {req}"


def test_the_lock_is_exactly_the_tree_pyproject_needs_and_the_venv_is_the_lock(lock):
    """Walk the dependency graph from pyproject through the installed metadata (the venv made from the lock).

    Every edge must be satisfied by a pin (a lock pip check would pass), every pin must be reached (the lock
    holds nothing pyproject does not need), and every installed version must be the pinned one.
    """
    seen: dict[NormalizedName, set[str]] = {}
    todo = [(req, set()) for req in _roots()]
    while todo:
        req, parent_extras = todo.pop()
        if not _applies(req, parent_extras):
            continue
        name = canonicalize_name(req.name)
        assert name in lock, f"{req} (needed) is not in requirements.lock: run make lock"
        assert req.specifier.contains(lock[name], prereleases=True), f"lock pins {name}=={lock[name]}, needed {req}"
        extras = set(req.extras)
        if name in seen and extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(extras)
        installed = Version(metadata.version(name))
        assert installed == lock[name], f"the venv has {name} {installed}, the lock {lock[name]}: run make venv"
        todo += [(Requirement(r), extras) for r in metadata.requires(name) or []]
    assert set(lock) == set(seen), f"pinned but not needed: {sorted(set(lock) - set(seen))}"


def test_make_installs_the_lock_without_resolving():
    makefile = (ROOT / "Makefile").read_text()
    stamp = re.search(r"^\$\(STAMP\):(.*?)(?=^\S)", makefile, re.M | re.S)
    assert stamp and "$(LOCK)" in stamp[1].splitlines()[0], "the venv is rebuilt when the lock changes"
    assert "--no-deps -r $(LOCK)" in stamp[1]
    assert re.search(r"^LOCK\s*:=\s*requirements\.lock$", makefile, re.M)
