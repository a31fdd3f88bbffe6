"""Processes below a pid, for tests/system/test_stack.py (what the MLflow server started)."""

from __future__ import annotations

import contextlib
from pathlib import Path


def descendants(pid: int) -> list[str]:
    """The command lines of every process below ``pid`` (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        todo += parents.get(child, [])
        with contextlib.suppress(OSError):
            found.append((Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return found
