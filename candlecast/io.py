"""Atomic file writes and file locks: a crash at any point leaves the old file or the new one, never half."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


@contextmanager
def _atomic_target(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as parquet (no index), atomically."""
    with _atomic_target(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as CSV (no index), atomically."""
    with _atomic_target(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_json(data: Any, path: Path) -> None:
    """Write ``data`` as indented JSON with sorted keys, atomically; values JSON lacks (paths, times) become strings."""
    with _atomic_target(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))


def write_text(text: str, path: Path) -> None:
    """Write ``text`` atomically."""
    with _atomic_target(path) as tmp:
        tmp.write_text(text)


def write_bytes(data: bytes, path: Path) -> None:
    """Write ``data`` atomically."""
    with _atomic_target(path) as tmp:
        tmp.write_bytes(data)


def read_json(path: Path) -> Any | None:
    """The parsed JSON of ``path``, or None when it does not exist (a record not written yet is not an error)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def append_jsonl(record: Any, path: Path) -> None:
    """Append ``record`` as one JSON line in one write: a kill leaves whole lines, a torn last one at worst."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")


def read_jsonl(path: Path) -> list[Any]:
    """The parsed lines of a JSON-lines file, oldest first ([] before it exists); a torn line is skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # the torn last line of a killed writer (or what was appended onto it)
            continue
    return out


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (fcntl) held for the block; released when the process dies."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
