"""A resumable grid of benchmark cells: each runs once, in a worker process, and leaves its files in a folder.

A cell is done when its CSV exists (written last, atomically), so a killed run continues where it
stopped and finished cells are never computed twice; delete a cell's files to recompute it. The
tables are built from these files only, so a partial grid already gives a partial table.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from candlecast.io import write_bytes, write_csv


@dataclass(frozen=True)
class Cell:
    """One unit of work: ``run(*args)`` returns per-fold rows and per-window arrays, stored under ``key``."""

    key: str
    run: Callable[..., tuple[pd.DataFrame, dict[str, np.ndarray]]]
    args: tuple[Any, ...]


def done(folder: Path, key: str) -> bool:
    return (folder / f"{key}.csv").exists()


def load(folder: Path, key: str) -> tuple[pd.DataFrame, dict[str, np.ndarray]] | None:
    """A finished cell's rows and arrays, or None while it is pending."""
    if not done(folder, key):
        return None
    arrays_path = folder / f"{key}.npz"
    arrays = dict(np.load(arrays_path)) if arrays_path.exists() else {}
    return pd.read_csv(folder / f"{key}.csv").assign(cell=key), arrays


def _work(cell: Cell, folder: Path) -> tuple[str, float]:
    print(f"  {cell.key} started (pid {os.getpid()})", flush=True)
    started = time.perf_counter()
    rows, arrays = cell.run(*cell.args)
    seconds = time.perf_counter() - started
    if arrays:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        write_bytes(buffer.getvalue(), folder / f"{cell.key}.npz")
    write_csv(rows.assign(cell_seconds=round(seconds, 1)), folder / f"{cell.key}.csv")  # last: marks it done
    return cell.key, seconds


def run_cells(cells: list[Cell], folder: Path, workers: int) -> None:
    """Run the cells not done yet, ``workers`` at a time, in order; print each as it finishes."""
    folder.mkdir(parents=True, exist_ok=True)
    todo = [c for c in cells if not done(folder, c.key)]
    print(f"{len(cells) - len(todo)} of {len(cells)} cells cached in {folder.name}/; running {len(todo)}", flush=True)
    if not todo:
        return
    with mp.get_context("spawn").Pool(workers, maxtasksperchild=1) as pool:
        for key, seconds in pool.imap_unordered(_run_one, [(c, folder) for c in todo]):
            load1 = os.getloadavg()[0]
            print(f"  {key}: {seconds:.0f} s (load {load1:.1f})", flush=True)


def _run_one(job: tuple[Cell, Path]) -> tuple[str, float]:
    """One cell; a failure is printed with its traceback and leaves the cell pending, the others run on."""
    try:
        return _work(*job)
    except Exception:  # noqa: BLE001  (one broken cell must not stop a grid of hours)
        print(f"  {job[0].key} FAILED:\n{traceback.format_exc()}", flush=True)
        return f"{job[0].key} (failed, pending)", float("nan")
