"""Quarantine: where a batch that failed the candle contract waits, with its report, for a human.

``<home>/quarantine/<id>/batch.parquet`` is the batch exactly as fetched and ``report.json`` the
validation that rejected it. Nothing is deleted: a released entry moves to ``_released/<id>`` after its
candles are in the store. The core never imports the contract suites (layering), so ``release`` takes
the validator as an argument; the CLI passes the candle contract.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from candlecast.data.candle_store import CandleStore
from candlecast.io import read_json, write_json, write_parquet
from candlecast.schema import CANDLE_COLUMNS, SeriesKey
from candlecast.settings import Settings

BATCH, REPORT, META = "batch.parquet", "report.json", "meta.json"
RELEASED = "_released"

#: validator(frame, series) -> report dict with at least "success" (True: may be stored) and "summary".
Validator = Callable[[pd.DataFrame, SeriesKey], Mapping[str, Any]]


class QuarantineError(ValueError):
    """A quarantine request that cannot be done as asked; the message says what to do instead."""


@dataclass(frozen=True)
class QuarantineEntry:
    """One quarantined batch: where it is and why it is there."""

    id: str
    series: SeriesKey
    path: Path
    quarantined_at: str
    rows: int
    report: dict[str, Any] | None

    @property
    def batch_path(self) -> Path:
        """The refused candles, kept as the parquet file they were staged in."""
        return self.path / BATCH

    @property
    def failed_expectations(self) -> list[str]:
        """'<expectation> on <columns>' for each critical failure of the report."""
        failures = (self.report or {}).get("failures") or []
        labels = (f["expectation"] + (f" on {f['columns']}" if f.get("columns") else "") for f in failures)
        return [label for label, f in zip(labels, failures, strict=True) if f.get("severity") == "critical"]


def quarantine_dir(settings: Settings) -> Path:
    """The quarantine root: beside the store, never inside it, so a refused batch is never read as data."""
    return settings.root / "quarantine"


def quarantine_batch(settings: Settings, series: SeriesKey, staged: Path, report: Mapping[str, Any]) -> QuarantineEntry:
    """Move a staged batch into quarantine beside its report (a rename: the batch is never copied or lost).

    The batch moves first, then the sidecars are written; a crash in between leaves an entry without a
    report, which ``list_entries`` still shows and ``release`` still re-validates.
    """
    staged = Path(staged)
    if not staged.exists():
        raise QuarantineError(f"staged batch {staged} does not exist: nothing to quarantine")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    entry_id = _free_id(settings, f"{staged.stem}_{stamp}")
    path = quarantine_dir(settings) / entry_id
    path.mkdir(parents=True)
    os.replace(staged, path / BATCH)
    rows = pq.ParquetFile(path / BATCH).metadata.num_rows
    meta = {"series": str(series), "quarantined_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    write_json({**meta, "rows": rows, "source": str(staged)}, path / META)
    write_json(dict(report), path / REPORT)
    return _entry(path)


def list_entries(settings: Settings) -> list[QuarantineEntry]:
    """Entries waiting for release, oldest first."""
    root = quarantine_dir(settings)
    if not root.is_dir():
        return []
    entries = [_entry(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]
    return sorted(entries, key=lambda e: (e.quarantined_at, e.id))


def get_entry(settings: Settings, entry_id: str) -> QuarantineEntry:
    """One waiting entry by id (a unique prefix is enough)."""
    entries = list_entries(settings)
    matches = [e for e in entries if e.id == entry_id] or [e for e in entries if e.id.startswith(entry_id)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        released = quarantine_dir(settings) / RELEASED / entry_id
        hint = " (it was already released)" if released.exists() else "; `candlecast quarantine list` shows the ids"
        raise QuarantineError(f"no quarantined batch {entry_id!r}{hint}")
    raise QuarantineError(f"{entry_id!r} matches {len(matches)} entries: give more of the id")


def read_batch(entry: QuarantineEntry) -> pd.DataFrame:
    """The refused candles of an entry, for `quarantine show` and a release's re-validation."""
    return pd.read_parquet(entry.batch_path)


@dataclass(frozen=True)
class ReleaseOutcome:
    """What a release did: stored (and how many candles were new) or still quarantined, and why."""

    entry: QuarantineEntry
    released: bool
    new_candles: int
    report: dict[str, Any]


def release(
    settings: Settings, entry_id: str, validate: Validator, fixed: pd.DataFrame | None = None
) -> ReleaseOutcome:
    """Re-validate an entry (or a fixed replacement of its batch) and store it if it now passes.

    A fixed frame replaces the quarantined batch only when it passes, so a failed attempt loses nothing.
    The store upsert comes before the entry moves to ``_released``: a crash between the two leaves the
    entry waiting, and releasing it again is a no-op upsert.
    """
    entry = get_entry(settings, entry_id)
    frame = read_batch(entry) if fixed is None else _conform(fixed)
    report = dict(validate(frame, entry.series))
    if not report.get("success"):
        write_json(report, entry.path / REPORT)
        return ReleaseOutcome(entry, False, 0, report)
    if fixed is not None:
        write_parquet(frame, entry.batch_path)
    new = CandleStore(settings.candles_dir).upsert(entry.series, frame)
    write_json(report, entry.path / REPORT)
    target = quarantine_dir(settings) / RELEASED / entry.id
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(entry.path, target)
    return ReleaseOutcome(_entry(target), True, new, report)


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    """A replacement batch in store column order; a missing column is the user's to fix, not ours."""
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise QuarantineError(f"the fixed batch lacks columns {missing}: it needs {CANDLE_COLUMNS}")
    return frame[CANDLE_COLUMNS].reset_index(drop=True)


def _entry(path: Path) -> QuarantineEntry:
    meta = read_json(path / META) or {}
    series = meta.get("series") or _series_from_id(path.name)
    return QuarantineEntry(
        id=path.name,
        series=SeriesKey.parse(series),
        path=path,
        quarantined_at=meta.get("quarantined_at", ""),
        rows=int(meta.get("rows", -1)),
        report=read_json(path / REPORT),
    )


def _series_from_id(entry_id: str) -> str:
    """Fallback when meta.json is missing (crash): the id starts with the series slug of the staged file."""
    match = re.match(r"(?P<ex>[^_]+)_(?P<sym>[^_]+)_(?P<tf>[^_]+)_", entry_id)
    if not match:
        raise QuarantineError(f"quarantine entry {entry_id!r} has no meta.json and no series in its name")
    return f"{match['ex']}:{match['sym'].replace('-', '/', 1)}:{match['tf']}"


def _free_id(settings: Settings, base: str) -> str:
    root = quarantine_dir(settings)
    candidate, n = base, 1
    while (root / candidate).exists() or (root / RELEASED / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate
