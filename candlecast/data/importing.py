"""Import a candle file into the store: read, drop the unclosed candle, gate, record, store.

One function does the whole path so `candlecast import` and the Prefect import task cannot drift
apart: the CLI only parses arguments and prints, the task only wraps. The gate is passed in (the
candle contract; the core never imports the suites), exactly as ``ingest`` takes it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from candlecast.data.candle_store import CandleStore
from candlecast.data.gaps import Gap
from candlecast.data.importers import drop_unclosed, read_candles
from candlecast.data.ingest import Gate, GateReport, series_gaps
from candlecast.data.validations import record_validation
from candlecast.schema import SeriesKey
from candlecast.settings import Settings


@dataclass(frozen=True)
class ImportOutcome:
    """What an import did: how many candles were read and stored, the gate's report, the series' gaps."""

    series: SeriesKey
    path: Path
    read: int
    unclosed: int  # dropped: the file's last candle was still forming when it was written
    new: int
    report: GateReport
    gaps: list[Gap]

    @property
    def stored(self) -> bool:
        return bool(self.report.success)

    @property
    def missing(self) -> int:
        return sum(g.missing for g in self.gaps)


def import_candles(
    settings: Settings,
    path: str | Path,
    series: SeriesKey,
    gate: Gate,
    *,
    fmt: str = "auto",
    columns: Mapping[str, str] | None = None,
    time_unit: str = "auto",
    now_ms: int | None = None,
) -> ImportOutcome:
    """Import one file's closed candles into ``series`` if they pass ``gate``; a refused file stores nothing.

    The file itself is only read, never changed. ``now_ms`` (default the local UTC clock) decides which
    candles are closed.

    Raises:
        ValueError: The file cannot be read as candles (unknown format, missing column, bad timestamps);
            the message says what to pass instead.
    """
    path = Path(path)
    frame = read_candles(path, fmt, columns, time_unit)
    closed = drop_unclosed(frame, series.timeframe, int(time.time() * 1000) if now_ms is None else int(now_ms))
    report = gate(closed, series)
    record_validation(settings, series, report.to_dict())
    store = CandleStore(settings.candles_dir)
    new = store.upsert(series, closed) if report.success else 0
    gaps = series_gaps(store, [series])[series] if report.success else []
    return ImportOutcome(series, path, len(closed), len(frame) - len(closed), new, report, gaps)
