"""Import a candle file into the store: read, drop the unclosed candle, stage, gate, record, store.

One function does the whole path so `candlecast import` and the Prefect import task cannot drift
apart: the CLI only parses arguments and prints, the task only wraps. The gate is passed in (the
candle contract; the core never imports the suites), exactly as ``ingest`` takes it, and a refused
file goes where a refused ingest batch goes: its candles to quarantine (the file itself is never
touched), its report beside the series' last verdict, which it does not overwrite.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic

import pandas as pd

from candlecast.data.candle_store import CandleStore
from candlecast.data.exchange import check_exchange_id
from candlecast.data.gaps import Gap
from candlecast.data.importers import detect_format, drop_unclosed, read_candles
from candlecast.data.ingest import R, gate_batch, series_gaps, store_batch
from candlecast.data.provenance import import_source
from candlecast.data.symbols import check_symbol
from candlecast.io import write_parquet
from candlecast.schema import SeriesKey
from candlecast.settings import Settings


@dataclass(frozen=True)
class ImportOutcome(Generic[R]):
    """What an import did: how many candles were read and stored, the gate's report, the series' gaps.

    Generic in the gate's report type, so a caller gets back the report its own gate made (the
    contract's ``ValidationReport`` for the CLI and the task), not only the protocol.
    """

    series: SeriesKey
    path: Path
    read: int
    unclosed: int  # dropped: the file's last candle was still forming when it was written
    new: int
    report: R
    gaps: list[Gap]
    quarantine: str | None = None  # the entry holding a refused file's candles

    @property
    def stored(self) -> bool:
        """Whether the file's candles reached the store (the gate passed)."""
        return bool(self.report.success)

    @property
    def missing(self) -> int:
        """How many candles the series still lacks between its first and last stored candle."""
        return sum(g.missing for g in self.gaps)


def import_candles(
    settings: Settings,
    path: str | Path,
    series: SeriesKey,
    gate: Callable[[pd.DataFrame, SeriesKey], R],
    *,
    fmt: str = "auto",
    columns: Mapping[str, str] | None = None,
    time_unit: str = "auto",
    now_ms: int | None = None,
    allow_source_change: bool = False,
) -> ImportOutcome[R]:
    """Import one file's closed candles into ``series`` if they pass ``gate``; a refused file stores nothing.

    The file itself is only read, never changed; a refused file's candles wait in quarantine. ``now_ms``
    (default the local UTC clock) decides which candles are closed.

    The file is recorded as the series' source; a series recorded from another source (an exchange,
    another file) is refused before anything is written unless ``allow_source_change``.

    Raises:
        ValueError: The exchange id is not a ccxt exchange, the symbol is not in ccxt's unified form
            BASE/QUOTE (a second, bogus series otherwise), the file cannot be read as candles (unknown
            format, missing column, bad timestamps) or holds no closed candle; the message says what to
            pass instead.
        provenance.SourceConflict: The series holds candles from another source; nothing was written.
    """
    check_exchange_id(series.exchange)
    check_symbol(series.symbol)
    path = Path(path)
    frame = read_candles(path, fmt, columns, time_unit)
    source = import_source(path, detect_format(path) if fmt == "auto" else fmt)
    store = CandleStore(settings.candles_dir)
    store.check_source(series, source, allow_source_change)
    closed = drop_unclosed(frame, series.timeframe, int(time.time() * 1000) if now_ms is None else int(now_ms))
    if closed.empty:
        raise ValueError(f"{path.name} holds no closed {series.timeframe} candle: nothing to import")
    first, last = int(closed["timestamp"].iloc[0]), int(closed["timestamp"].iloc[-1])
    staged = settings.staging_dir / f"{series.slug}_{first}_{last}_import.parquet"
    write_parquet(closed, staged)
    report, entry = gate_batch(settings, series, staged, gate)
    unclosed = len(frame) - len(closed)
    if entry is not None:
        return ImportOutcome(series, path, len(closed), unclosed, 0, report, [], entry.id)
    new = store_batch(settings, series, staged, source, allow_source_change)
    gaps = series_gaps(store, [series])[series]
    return ImportOutcome(series, path, len(closed), unclosed, new, report, gaps)
