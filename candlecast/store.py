"""The candle store: one parquet file per series in hive-style folders.

``candles/exchange=binance/symbol=BTC-USDT/timeframe=1h/candles.parquet`` is readable with plain
pandas, pyarrow.dataset or DuckDB. Upserts merge by timestamp (the newer batch wins), are atomic
(temporary file + rename) and serialised per series by a file lock, so two writers never lose
each other's candles.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from candlecast.io import read_json, write_json, write_parquet
from candlecast.schema import CANDLE_COLUMNS, SeriesKey


class CandleStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def series_dir(self, series: SeriesKey) -> Path:
        symbol = series.symbol.replace("/", "-")
        return self.root / f"exchange={series.exchange}" / f"symbol={symbol}" / f"timeframe={series.timeframe}"

    def path(self, series: SeriesKey) -> Path:
        return self.series_dir(series) / "candles.parquet"

    def read(self, series: SeriesKey) -> pd.DataFrame:
        path = self.path(series)
        if not path.exists():
            return empty_candles()
        return pd.read_parquet(path, columns=CANDLE_COLUMNS)

    def last_timestamp(self, series: SeriesKey) -> int | None:
        # read from the data, not the manifest: the data is the truth after any crash
        path = self.path(series)
        if not path.exists():
            return None
        ts = pd.read_parquet(path, columns=["timestamp"])["timestamp"]
        return int(ts.iloc[-1]) if len(ts) else None

    def manifest(self, series: SeriesKey) -> dict | None:
        return read_json(self.series_dir(series) / "_manifest.json")

    def upsert(self, series: SeriesKey, batch: pd.DataFrame) -> int:
        """Merge ``batch`` into the series; returns how many timestamps were new."""
        if list(batch.columns) != CANDLE_COLUMNS:
            raise ValueError(f"batch columns {list(batch.columns)} differ from {CANDLE_COLUMNS}")
        with self._lock(series):
            old = self.read(series)
            merged = pd.concat([old, batch], ignore_index=True)
            merged = merged.drop_duplicates("timestamp", keep="last").sort_values("timestamp", ignore_index=True)
            n_new = len(merged) - len(old)
            write_parquet(merged, self.path(series))
            # the manifest follows the data: if a crash falls between the two, the data is right and
            # the manifest is rebuilt from it on the next write
            write_json(
                {
                    "series": str(series),
                    "rows": len(merged),
                    "first": int(merged["timestamp"].iloc[0]) if len(merged) else None,
                    "last": int(merged["timestamp"].iloc[-1]) if len(merged) else None,
                },
                self.series_dir(series) / "_manifest.json",
            )
        return n_new

    def list_series(self) -> list[SeriesKey]:
        found = []
        for path in sorted(self.root.glob("exchange=*/symbol=*/timeframe=*/candles.parquet")):
            ex, sym, tf = (p.split("=", 1)[1] for p in path.parent.parts[-3:])
            found.append(SeriesKey(ex, sym.replace("-", "/", 1), tf))
        return found

    @contextmanager
    def _lock(self, series: SeriesKey) -> Iterator[None]:
        lock_path = self.series_dir(series) / ".lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def empty_candles() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "timestamp" else "float64") for c in CANDLE_COLUMNS})
