"""The candle store: parquet in hive-style series folders, one file per time period.

``candles/exchange=binance/symbol=BTC-USDT/timeframe=1h/2021.parquet`` (one file per year; per month
below 1h) is readable with plain ``pd.read_parquet(series_dir)`` or ``pd.read_parquet(root)``,
pyarrow.dataset or DuckDB, none of which need candlecast: the manifest ``_manifest.json``, the record of
the series' sources ``_sources.json`` (``provenance``), the lock ``.lock`` and temporary files start
with '_' or '.' and are skipped by those readers.

Upserts merge by timestamp (the newer batch wins), so replaying a batch is a no-op. Each file is
replaced atomically (temporary file + rename) and the periods are written oldest first, so a crash
mid-upsert leaves every file whole and the newest stored candle still marks a contiguous prefix of
the batch; the next run refetches from there. A per-series file lock serialises writers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from candlecast.data.gaps import find_gaps
from candlecast.data.provenance import Source, check_source, record_source, sources
from candlecast.io import file_lock, read_json, write_json, write_parquet
from candlecast.schema import CANDLE_COLUMNS, SeriesKey, timeframe_ms

MANIFEST = "_manifest.json"
#: The single-file layout of candlecast <= 0.1; folded into period files by the first upsert.
LEGACY_FILE = "candles.parquet"
_MONTHLY_BELOW_MS = 3_600_000  # minute series get a file per month: a year of 1m is 525,600 rows
#: What pyarrow raises for a file that is not (or no longer) parquet: truncated, overwritten, zeroed.
_UNREADABLE = (pa.ArrowException, OSError)


class CorruptPartition(ValueError):
    """A data file of a series cannot be read; the message names it and says how to repair it.

    A ValueError, so callers that turn bad input into one line keep working; catch this first for
    its own exit code.
    """

    def __init__(self, series: SeriesKey, path: Path, reason: str) -> None:
        self.series, self.path, self.reason = series, Path(path), reason
        super().__init__(
            f"{path} is not a readable parquet file ({reason}): run `candlecast store repair {series}` "
            "to set it aside and refetch its candles (the rest of the store stays readable)"
        )


class CandleStore:
    """Candle series under ``root``; see the module docstring for the layout and guarantees."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def series_dir(self, series: SeriesKey) -> Path:
        """The hive-style folder of one series (``exchange=/symbol=/timeframe=``), whether or not it exists yet.

        The symbol's '/' becomes '-' so the pair stays one path segment.
        """
        symbol = series.symbol.replace("/", "-")
        return self.root / f"exchange={series.exchange}" / f"symbol={symbol}" / f"timeframe={series.timeframe}"

    def path(self, series: SeriesKey) -> Path:
        """Where the series lives: a folder that ``pd.read_parquet`` reads as one table."""
        return self.series_dir(series)

    def files(self, series: SeriesKey) -> list[Path]:
        """The series' data files, oldest period first (a legacy single file, if any, last)."""
        folder = self.series_dir(series)
        periods = sorted(p for p in folder.glob("*.parquet") if p.name[0] not in "._" and p.name != LEGACY_FILE)
        legacy = folder / LEGACY_FILE
        return periods + ([legacy] if legacy.exists() else [])

    def read(self, series: SeriesKey) -> pd.DataFrame:
        """All stored candles of the series, sorted by open time; an empty frame for a series never stored."""
        files = self.files(series)
        if not files:
            return empty_candles()
        frame = pd.concat([self._read_file(series, f, CANDLE_COLUMNS) for f in files], ignore_index=True)
        if files[-1].name == LEGACY_FILE:
            frame = frame.drop_duplicates("timestamp", keep="first").sort_values("timestamp", ignore_index=True)
        return frame

    def read_recent(self, series: SeriesKey, rows: int) -> pd.DataFrame:
        """The newest period files that together hold at least ``rows`` candles (all there are, if fewer), sorted.

        What a forecast of today needs (its window, its warm-up, a month of returns) sits in the newest
        one or two files of years of history; whole files, so a reader needing a little more still has it.
        """
        files = self.files(series)
        if not files or files[-1].name == LEGACY_FILE:  # a legacy file holds the whole history, read as it is
            return self.read(series)
        parts, held = [], 0
        for f in reversed(files):
            parts.append(self._read_file(series, f, CANDLE_COLUMNS))
            held += len(parts[-1])
            if held >= rows:
                break
        return pd.concat(parts[::-1], ignore_index=True)

    def last_timestamp(self, series: SeriesKey) -> int | None:
        """The newest stored open time (ms), or None for an empty series; where the next fetch resumes."""
        # read from the data, not the manifest: the data is the truth after any crash
        ends = [self._guarded(series, f, _max_timestamp) for f in self.files(series)[-2:]]
        ends = [e for e in ends if e is not None]
        return max(ends) if ends else None

    def manifest(self, series: SeriesKey) -> dict[str, Any] | None:
        """Coverage (rows, first, last, per-file spans) and gaps; None for a series never stored.

        Written by each upsert; if the files changed since (a writer killed between data and manifest),
        it is recomputed from the files, so it never disagrees with the data.
        """
        stored = read_json(self.series_dir(series) / MANIFEST)
        files = self.files(series)
        if not files:
            return stored
        seen = {name: part.get("signature") for name, part in (stored or {}).get("files", {}).items()}
        return stored if seen == {f.name: _signature(f) for f in files} else self._coverage(series)

    def sources(self, series: SeriesKey) -> list[dict[str, Any]]:
        """Where the series' candles came from, oldest first (the last is current); [] when never recorded."""
        return sources(self.series_dir(series))

    def check_source(self, series: SeriesKey, source: Source, allow_change: bool = False) -> None:
        """Raise ``provenance.SourceConflict`` before a write if the series is recorded from another source."""
        check_source(self.series_dir(series), series, source, allow_change)

    def upsert(
        self, series: SeriesKey, batch: pd.DataFrame, source: Source | None = None, allow_source_change: bool = False
    ) -> int:
        """Merge ``batch`` into the series; returns how many timestamps were new.

        With ``source``, a series recorded from another source is refused (``SourceConflict``, nothing
        written) unless ``allow_source_change``; the source is recorded before the first candle is.
        """
        if list(batch.columns) != CANDLE_COLUMNS:
            raise ValueError(
                f"batch columns {list(batch.columns)} differ from {CANDLE_COLUMNS}: "
                "rename or reorder them (importers do this for known file formats)"
            )
        batch = batch.astype({"timestamp": "int64", **{c: "float64" for c in CANDLE_COLUMNS[1:]}})
        folder = self.series_dir(series)
        with file_lock(folder / ".lock"):
            if source is not None:  # checked again under the lock: another writer may have recorded since
                check_source(folder, series, source, allow_source_change)
                record_source(folder, series, source)  # before the data: no candle is ever stored unrecorded
            _remove_debris(folder)
            legacy = folder / LEGACY_FILE
            if legacy.exists():
                self._merge(series, self._read_file(series, legacy, CANDLE_COLUMNS), {})
            known: dict[str, np.ndarray] = {}
            n_new = self._merge(series, batch, known)
            legacy.unlink(missing_ok=True)
            # the manifest follows the data: if a crash falls between the two, the data is right and
            # the manifest is recomputed from it (see manifest())
            write_json(self._coverage(series, known), folder / MANIFEST)
        return n_new

    def repair(self, series: SeriesKey) -> None:
        """Tidy up after a writer that died: drop its temporary files and bring the manifest up to date."""
        folder = self.series_dir(series)
        if not folder.is_dir():
            return
        with file_lock(folder / ".lock"):
            _remove_debris(folder)
            if self.files(series) and read_json(folder / MANIFEST) != self.manifest(series):
                write_json(self._coverage(series), folder / MANIFEST)

    def _merge(self, series: SeriesKey, batch: pd.DataFrame, known: dict[str, np.ndarray]) -> int:
        """Merge into the period files, oldest first (see the module docstring); returns new timestamps.

        ``known`` receives each touched file's timestamps, so the manifest need not read them back.
        """
        folder, n_new = self.series_dir(series), 0
        labels = period_labels(batch["timestamp"].to_numpy(), series.timeframe)
        for label in sorted(set(labels.tolist())):
            path = folder / f"{label}.parquet"
            old = self._read_file(series, path, CANDLE_COLUMNS) if path.exists() else empty_candles()
            merged = pd.concat([old, batch[labels == label]], ignore_index=True)
            merged = merged.drop_duplicates("timestamp", keep="last").sort_values("timestamp", ignore_index=True)
            n_new += len(merged) - len(old)
            known[path.name] = merged["timestamp"].to_numpy()
            if len(merged) == len(old) and merged.equals(old):
                continue  # a replayed batch rewrites nothing
            write_parquet(merged, path)
        return n_new

    def corrupt_files(self, series: SeriesKey) -> list[Path]:
        """The series' data files that cannot be read whole (a full read: footers alone miss a bad page)."""
        bad = []
        for f in self.files(series):
            try:
                pq.read_table(f)
            except _UNREADABLE:
                bad.append(f)
        return bad

    def _read_file(self, series: SeriesKey, path: Path, columns: list[str]) -> pd.DataFrame:
        return self._guarded(series, path, lambda p: pd.read_parquet(p, columns=columns))

    @staticmethod
    def _guarded(series: SeriesKey, path: Path, read: Any) -> Any:
        """``read(path)``, with pyarrow's nameless errors turned into a CorruptPartition naming the file."""
        try:
            return read(path)
        except _UNREADABLE as err:
            raise CorruptPartition(series, path, str(err).splitlines()[0].rstrip(".")) from err

    def list_series(self) -> list[SeriesKey]:
        """Every series that holds at least one data file, in path order (the catalogue `candlecast status` walks)."""
        found = []
        for folder in sorted(self.root.glob("exchange=*/symbol=*/timeframe=*")):
            if not any(p.name[0] not in "._" for p in folder.glob("*.parquet")):
                continue
            ex, sym, tf = (p.split("=", 1)[1] for p in folder.parts[-3:])
            found.append(SeriesKey(ex, sym.replace("-", "/", 1), tf))
        return found

    def _coverage(self, series: SeriesKey, known: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """The manifest, from the files' timestamps alone (one int64 column each; ``known`` ones not reread)."""
        parts, stamps, known = {}, [], known or {}
        for f in self.files(series):
            ts = known[f.name] if f.name in known else self._read_file(series, f, ["timestamp"])["timestamp"].to_numpy()
            stamps.append(ts)
            parts[f.name] = {"rows": len(ts), "first": _int(ts[:1]), "last": _int(ts[-1:]), "signature": _signature(f)}
        ts = np.concatenate(stamps) if stamps else np.array([], dtype=np.int64)
        gaps = find_gaps(ts, series.timeframe)
        return {
            "series": str(series),
            "rows": len(ts),
            "first": _int(ts[:1]),
            "last": _int(ts[-1:]),
            "files": parts,
            "missing": sum(g.missing for g in gaps),
            "gaps": [g.to_dict() for g in gaps],
        }


def period_labels(timestamps: np.ndarray, timeframe: str) -> np.ndarray:
    """File label per candle: '2021' for 1h and up, '2021-04' below 1h (UTC)."""
    unit = "M" if timeframe_ms(timeframe) < _MONTHLY_BELOW_MS else "Y"
    return np.asarray(timestamps, dtype=np.int64).astype("datetime64[ms]").astype(f"datetime64[{unit}]").astype(str)


def empty_candles() -> pd.DataFrame:
    """A zero-row frame with the candle schema's columns and dtypes, so concatenation keeps the dtypes."""
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "timestamp" else "float64") for c in CANDLE_COLUMNS})


def _max_timestamp(path: Path) -> int | None:
    """The newest open time in a file, from the parquet footer's statistics when present."""
    meta = pq.ParquetFile(path).metadata
    col = meta.schema.names.index("timestamp")
    best = None
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(col).statistics
        if stats is None or not stats.has_min_max:
            return _int(np.sort(pd.read_parquet(path, columns=["timestamp"])["timestamp"].to_numpy())[-1:])
        best = stats.max if best is None else max(best, stats.max)
    return None if best is None else int(best)


def _remove_debris(folder: Path) -> None:
    """Temporary files of dead writers; only call with the series lock held, so no live writer owns one."""
    for stale in folder.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def _signature(path: Path) -> str:
    """Size and modification time: changes whenever the file is replaced."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _int(values: Any) -> int | None:
    arr = np.atleast_1d(np.asarray(values))
    return int(arr[0]) if len(arr) else None
