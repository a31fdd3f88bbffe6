"""Fetching new closed candles for a series into a staging file, ready for the data contract.

Nothing reaches the candle store from here: a batch is staged, validated, then upserted, and a
batch that fails validation stays in staging for inspection (nothing is lost).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ccxt
import pandas as pd

from candlecast.config import RunConfig
from candlecast.emulator import synthetic_emulator
from candlecast.exchange import fetch_closed_candles, make_exchange
from candlecast.io import write_json, write_parquet
from candlecast.schema import SeriesKey, timeframe_ms
from candlecast.settings import Settings
from candlecast.store import CandleStore

log = logging.getLogger(__name__)


@contextmanager
def open_exchange(cfg: RunConfig, now_ms: int | None = None) -> Iterator[ccxt.Exchange]:
    """The configured exchange; with ``exchange.emulator`` a local Binance emulator serves it.

    The emulator's synthetic history runs from ``exchange.synthetic_start`` to now (seeded), so a
    later run sees the same past candles plus the ones that closed since.
    """
    if not cfg.exchange.emulator:
        yield make_exchange(cfg.exchange.id, cfg.exchange.api_url, cfg.exchange.rate_limit)
        return
    step = timeframe_ms(cfg.data.timeframe)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    start = int(cfg.exchange.synthetic_start.timestamp() * 1000) // step * step
    n = (now - start) // step + 1
    if n < 2:
        raise ValueError(f"exchange.synthetic_start {cfg.exchange.synthetic_start} is not before now")
    with synthetic_emulator(
        cfg.data.symbols, timeframe=cfg.data.timeframe, start_ms=start, n=n, seed=cfg.exchange.seed, now_ms=now
    ) as emulator:
        yield make_exchange("binance", emulator.url, enable_rate_limit=False)


def fetch_batch(settings: Settings, cfg: RunConfig, series: SeriesKey, now_ms: int | None = None) -> Path | None:
    """Fetch the closed candles after the last stored one into a staging file; None if up to date."""
    store = CandleStore(settings.candles_dir)
    step = timeframe_ms(series.timeframe)
    with open_exchange(cfg, now_ms) as exchange:
        now = exchange.milliseconds() if now_ms is None else now_ms
        last = store.last_timestamp(series)
        since = last + step if last is not None else (now - cfg.data.history_days * 86_400_000) // step * step
        batch = fetch_closed_candles(exchange, series.symbol, series.timeframe, since_ms=since, now_ms=now)
    log.info("fetched %d closed candles for %s since %d", len(batch), series, since)
    if batch.empty:
        return None
    first, end = int(batch["timestamp"].iloc[0]), int(batch["timestamp"].iloc[-1])
    path = settings.staging_dir / f"{series.slug}_{first}_{end}.parquet"
    write_parquet(batch, path)
    return path


def record_validation(settings: Settings, series: SeriesKey, report: dict) -> Path:
    """Keep the last validation result of a series for `candlecast status`."""
    path = settings.validation_dir / f"{series.slug}.json"
    write_json(report, path)
    return path


def store_batch(settings: Settings, series: SeriesKey, staged: Path) -> int:
    """Upsert a validated staged batch into the store, then drop the staging file."""
    n_new = CandleStore(settings.candles_dir).upsert(series, pd.read_parquet(staged))
    Path(staged).unlink(missing_ok=True)
    return n_new
