"""Store maintenance: repair a series whose data file is corrupt, and remove a series.

Repair sets each unreadable file aside (``<home>/corrupt/<series>/<file>.<stamp>``, with a JSON note
of the time range it held), so the rest of the series is readable at once, then refetches that range
from the exchange through the candle contract. The range comes from the manifest written before the
file broke (else the file's whole period), so a file in the middle of a series is rebuilt too, which
a plain ingest would never do (it resumes after the newest candle). A refetch that fails leaves the
note behind and running repair again retries it; a successful one deletes the unreadable bytes.

Removal renames the series folder out of the store in one step (under the series lock) before
deleting it, so a reader sees the whole series or none of it, never a half-deleted one.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from candlecast.data.candle_store import LEGACY_FILE, MANIFEST, CandleStore
from candlecast.data.fetching import fetch_ranges
from candlecast.data.ingest import Gate, store_staged
from candlecast.data.provenance import Source
from candlecast.io import file_lock, read_json, write_json
from candlecast.schema import SeriesKey, timeframe_ms
from candlecast.settings import Settings

NOTE_SUFFIX = ".json"


@dataclass(frozen=True)
class SetAside:
    """An unreadable data file moved out of the store, and the candles (open times) it held."""

    series: str
    file: str  # its name in the series folder, e.g. '2022.parquet'
    kept_at: str  # where its bytes are now
    since: int
    until: int | None  # exclusive; None: up to the newest closed candle
    reason: str


@dataclass
class RepairOutcome:
    """What a repair did: files set aside now, ranges refetched (new candles each), ranges still missing."""

    series: SeriesKey
    set_aside: list[SetAside] = field(default_factory=list)
    refetched: dict[str, int] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)  # file -> why its range is not back yet

    @property
    def repaired(self) -> bool:
        """True when every set-aside range is back in the store."""
        return not self.pending


def corrupt_dir(settings: Settings, series: SeriesKey) -> Path:
    """Where a series' unreadable files are kept: outside the store, so its readers never see them."""
    return settings.root / "corrupt" / series.slug


def set_aside_corrupt(settings: Settings, series: SeriesKey) -> list[SetAside]:
    """Move every unreadable file of ``series`` out of the store, noting the range each held."""
    store = CandleStore(settings.candles_dir)
    folder = store.series_dir(series)
    spans = (read_json(folder / MANIFEST) or {}).get("files", {})  # written while the file was whole
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    moved = []
    for path in store.corrupt_files(series):
        since, until = _span(path.name, series.timeframe, spans.get(path.name))
        target = corrupt_dir(settings, series) / f"{path.name}.{stamp}"
        note = SetAside(str(series), path.name, str(target), since, until, "unreadable parquet")
        target.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(folder / ".lock"):
            write_json(asdict(note), target.with_name(target.name + NOTE_SUFFIX))  # the note first: never lost
            os.replace(path, target)
        moved.append(note)
    if moved:
        store.repair(series)  # the manifest now describes the readable files only
    return moved


def pending_repairs(settings: Settings, series: SeriesKey) -> list[SetAside]:
    """Ranges set aside and not refetched yet, oldest first."""
    notes = sorted(corrupt_dir(settings, series).glob(f"*{NOTE_SUFFIX}"))
    # a note that vanished between the glob and the read was refetched meanwhile: nothing pending
    return [SetAside(**data) for n in notes if (data := read_json(n)) is not None]


def repair_series(
    settings: Settings, series: SeriesKey, gate: Gate, source: Source | None = None, **fetch_options: Any
) -> RepairOutcome:
    """Set aside the series' unreadable files, then refetch, gate and store every range set aside.

    ``fetch_options`` go to ``fetching.fetch_ranges`` (api_url, rate_limit, now_ms, ...). A ``source``
    other than the one the series is recorded from is refused before anything is set aside
    (``provenance.SourceConflict``): a repair refetches the same candles, never another market's.
    """
    if source is not None:
        CandleStore(settings.candles_dir).check_source(series, source)
    outcome = RepairOutcome(series, set_aside=set_aside_corrupt(settings, series))
    for note in pending_repairs(settings, series):
        error, new = _refetch(settings, series, note, gate, fetch_options, source)
        if error is None:
            outcome.refetched[note.file] = new
            Path(note.kept_at).unlink(missing_ok=True)
            Path(note.kept_at + NOTE_SUFFIX).unlink(missing_ok=True)
        else:
            outcome.pending[note.file] = error
    return outcome


def _refetch(
    settings: Settings,
    series: SeriesKey,
    note: SetAside,
    gate: Gate,
    fetch_options: dict[str, Any],
    source: Source | None,
) -> tuple[str | None, int]:
    """(error or None, new candles) of refetching one set-aside range through the gate."""
    fetched = fetch_ranges(settings, series.exchange, {series: (note.since, note.until)}, **fetch_options)[series]
    if fetched.error:
        return fetched.error, 0
    new, refused = store_staged(settings, series, fetched.staged, gate, source)
    return refused, new


def _span(name: str, timeframe: str, recorded: dict[str, Any] | None) -> tuple[int, int | None]:
    """The open times a file held: as the manifest recorded them, else its whole period (year or month)."""
    if recorded and recorded.get("first") is not None:
        return int(recorded["first"]), int(recorded["last"]) + timeframe_ms(timeframe)
    if name == LEGACY_FILE:
        return 0, None
    label = name.removesuffix(".parquet")
    unit: Literal["M", "Y"] = "M" if "-" in label else "Y"  # a literal: numpy's overloads accept known units only
    start = np.datetime64(label, unit)
    return _ms(start), _ms(start + np.timedelta64(1, unit))


def _ms(moment: np.datetime64) -> int:
    return int(moment.astype("datetime64[ms]").astype(np.int64))


@dataclass(frozen=True)
class StoredSeries:
    """What a removal would take away: the folder, its data files and the candles the manifest counts."""

    series: SeriesKey
    folder: Path
    files: int
    rows: int | None  # None when the manifest is missing


def describe(settings: Settings, series: SeriesKey) -> StoredSeries:
    """The series as stored, read without opening its data files (so a corrupt series can be removed).

    Raises:
        ValueError: Nothing is stored for ``series``.
    """
    store = CandleStore(settings.candles_dir)
    folder = store.series_dir(series)
    files = store.files(series) if folder.is_dir() else []
    if not files:
        raise ValueError(f"nothing stored for {series}: `candlecast status` lists the stored series")
    rows = (read_json(folder / MANIFEST) or {}).get("rows")
    return StoredSeries(series, folder, len(files), None if rows is None else int(rows))


def remove_series(settings: Settings, series: SeriesKey) -> StoredSeries:
    """Remove a series from the store atomically, with its validation record and pending repairs.

    Quarantined batches of the series are kept: they are evidence, and `quarantine release` can
    still store one (which creates the series again).
    """
    stored = describe(settings, series)
    trash = settings.root / ".trash"
    _empty(trash)  # what a removal killed mid-delete left behind
    target = trash / f"{series.slug}.{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%f')}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(stored.folder / ".lock"):
        os.replace(stored.folder, target)  # one rename: readers see all of the series or none of it
    _empty(trash)
    (settings.validation_dir / f"{series.slug}.json").unlink(missing_ok=True)
    shutil.rmtree(corrupt_dir(settings, series), ignore_errors=True)
    for parent in (stored.folder.parent, stored.folder.parent.parent):  # symbol=..., exchange=... if now empty
        try:
            parent.rmdir()
        except OSError:  # not empty (other series), or already gone
            break
    return stored


def _empty(folder: Path) -> None:
    if folder.is_dir():
        for entry in folder.iterdir():
            shutil.rmtree(entry, ignore_errors=True)
