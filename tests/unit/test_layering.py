"""The import rules of docs/architecture.md, enforced: no cycles, small modules, leaves at the top.

import-linter's contracts (pyproject.toml) run as `lint-imports` in tests/integration/test_lint.py.
"""

import re
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[2]
#: The top-level folders that install inside the one namespace (candlecast/<name> links to ../<name>).
FOLDERS = ("models", "tasks", "flows", "expectations", "deployments")
PACKAGES = ("candlecast", *FOLDERS)


def test_no_import_cycles_anywhere():
    """No module reaches itself through its imports, lazy (function-level) imports included."""
    graph = grimp.build_graph("candlecast")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                cycles.append(
                    " -> ".join(graph.find_shortest_chain(importer=imported, imported=module)) + f" -> {imported}"
                )
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_core_top_level_holds_only_leaves_and_subpackages():
    top = {p.name for p in (REPO / "candlecast").iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    allowed = {"__init__.py", "config.py", "configfile.py", "liveconfig.py", "settings.py", "schema.py", "io.py"}
    allowed |= {"data", "devtools", "features", "forecasting", "live", "registry", "trading", *FOLDERS}
    assert top <= allowed, f"move {sorted(top - allowed)} into a sub-package"


def test_no_module_passes_400_lines():
    big = {
        str(p.relative_to(REPO)): n
        for package in PACKAGES
        for p in (REPO / package).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not big, f"split these along their seams: {big}"


def test_top_level_folders_import_only_inside_the_namespace():
    """Each top-level folder is candlecast.<name> through its link; nothing imports it by the bare name."""
    for name in FOLDERS:
        link = REPO / "candlecast" / name
        assert link.is_symlink() and link.resolve() == REPO / name, f"candlecast/{name} must link to ../{name}"
    bare = re.compile(rf"^\s*(from|import) ({'|'.join(FOLDERS)})\b", re.MULTILINE)
    offenders = [
        str(p.relative_to(REPO))
        for top in (*PACKAGES, "tests", "bench")
        for p in (REPO / top).rglob("*.py")
        if bare.search(p.read_text())
    ]
    assert not offenders, f"import these as candlecast.<name>: {offenders}"
