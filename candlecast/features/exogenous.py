"""Exogenous series from a file (e.g. a sentiment index), joined to candles point in time.

A value stamped at time s (ms UTC) is taken as known from s + delay on. Candle t gets the latest
value known by its close (timestamp + timeframe), so a daily index published at midnight reaches
the candle that closes at midnight, and never one before it.

Serving reads a file once per process while it stays the same file (``cached_exogenous``): a request
then pays no file read, and a rewritten file (atomic writes replace it: new mtime or size) is read again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from candlecast.config import ExogenousConfig


def read_exogenous(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A frame of ``timestamp`` (int ms) and numeric value columns, sorted, one row per timestamp."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"exogenous file {path} does not exist: fix features.exogenous[].path")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if "timestamp" not in frame.columns:
        raise ValueError(f"exogenous file {path} needs a `timestamp` column (ms since epoch, UTC)")
    values = columns or [c for c in frame.columns if c != "timestamp"]
    missing = [c for c in values if c not in frame.columns]
    if missing or not values:
        have = list(frame.columns)
        raise ValueError(f"exogenous file {path} lacks value columns {missing or '(none)'}: it has {have}")
    bad = [c for c in values if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ValueError(f"exogenous columns {bad} in {path} are not numeric")
    if frame["timestamp"].duplicated().any():
        raise ValueError(f"exogenous file {path} repeats timestamps: keep one value per time (the first published)")
    out = frame[["timestamp", *values]].copy()
    out["timestamp"] = out["timestamp"].astype("int64")
    return out.sort_values("timestamp").reset_index(drop=True)


_CACHE: dict[tuple[str, tuple[str, ...] | None], tuple[tuple[int, int], pd.DataFrame]] = {}


def cached_exogenous(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """``read_exogenous``, read again only when the file's identity (path, mtime, size) changes.

    The frame is shared between calls: callers must not modify it (``join_exogenous`` copies).
    """
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ValueError(f"exogenous file {path} does not exist: fix features.exogenous[].path") from None
    key = (str(path), tuple(columns) if columns is not None else None)
    identity = (stat.st_mtime_ns, stat.st_size)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == identity:
        return hit[1]
    frame = read_exogenous(path, columns)
    _CACHE[key] = (identity, frame)
    return frame


def exogenous_prefix(path: str | Path) -> str:
    """The column prefix of a file's values, ``exo_<file stem>``: names say which file a feature came from."""
    return "exo_" + Path(path).name.split(".")[0].lower().replace("-", "_")


_LOOKUPS: dict[tuple[int, int, str], tuple[pd.DataFrame, tuple[np.ndarray, np.ndarray, list[str]]]] = {}


def exogenous_lookup(frame: pd.DataFrame, source: ExogenousConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """When each value became known (sorted, ms), the values (rows, V) in that order, and their column names.

    Kept per frame object: ``cached_exogenous`` hands every request the same frame (and replaces it when
    the file changes), so a served request pays no sort and no frame access; neither the frame nor the
    arrays may be modified.
    """
    key = (id(frame), source.delay_ms, str(source.path))
    hit = _LOOKUPS.get(key)
    if hit is not None and hit[0] is frame:
        return hit[1]
    if len(_LOOKUPS) > 64:  # frames of files read again since: let them go
        _LOOKUPS.clear()
    lookup = _lookup(frame, source)
    _LOOKUPS[key] = (frame, lookup)
    return lookup


def _lookup(frame: pd.DataFrame, source: ExogenousConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``exogenous_lookup`` computed afresh."""
    values = [c for c in frame.columns if c != "timestamp"]
    order = np.argsort(frame["timestamp"].to_numpy("int64"), kind="stable")
    known_at = frame["timestamp"].to_numpy("int64")[order] + source.delay_ms
    prefix = exogenous_prefix(source.path)
    return known_at, frame[values].to_numpy(np.float64)[order], [f"{prefix}_{c}" for c in values]


def join_exogenous(timestamps: pd.Series, step_ms: int, frame: pd.DataFrame, source: ExogenousConfig) -> pd.DataFrame:
    """Columns ``exo_<file>_<col>``: for each candle, the latest value known when it closed."""
    # a backward as-of join on NumPy (searchsorted): what merge_asof gives, without its frame copies, which
    # cost a served request more than the rest of its features (docs/benchmarks.md §3)
    known_at, table, names = _lookup(frame, source)  # not the per-frame cache: a caller's frame may change
    closes = timestamps.astype("int64").to_numpy() + step_ms
    latest = np.searchsorted(known_at, closes, side="right") - 1  # -1: nothing known yet
    out = np.full((len(closes), len(names)), np.nan)
    out[latest >= 0] = table[latest[latest >= 0]]
    return pd.DataFrame(out, columns=names)
