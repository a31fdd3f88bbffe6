"""The import rules of docs/architecture.md, enforced: no cycles, small modules, leaves at the top.

import-linter's contracts (pyproject.toml) run as `lint-imports` in tests/integration/test_lint.py.
"""

from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("candlecast", "models", "tasks", "flows", "expectations", "deployments")


def test_no_import_cycles_anywhere():
    """No module reaches itself through its imports, lazy (function-level) imports included."""
    graph = grimp.build_graph(*PACKAGES)
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
    allowed = {"__init__.py", "config.py", "settings.py", "schema.py", "io.py"}
    allowed |= {"data", "devtools", "features", "forecasting", "registry", "trading"}
    assert top <= allowed, f"move {sorted(top - allowed)} into a sub-package"


def test_no_module_passes_400_lines():
    big = {
        str(p.relative_to(REPO)): n
        for package in PACKAGES
        for p in (REPO / package).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not big, f"split these along their seams: {big}"
