"""Fetch closed candles into staging: what each series lacks (ingest) or one time range (repair).

Every fetch goes through one async ccxt client per exchange (``pagination.fetch_many``) and writes
each chunk to ``<home>/staging`` as it arrives, under a deterministic name, so a long backfill never
holds years of candles in memory and a crashed run is finished by running it again. Nothing here
touches the store's data: ``ingest`` gates the staged files and stores them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import ccxt
import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore, CorruptPartition
from candlecast.data.exchange import Endpoint, FetchStats, RetryPolicy, make_exchange
from candlecast.data.pagination import FetchJob, fetch_many, refuse_unknown_markets
from candlecast.io import write_parquet
from candlecast.schema import SeriesKey, timeframe_ms
from candlecast.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_CONCURRENCY = 4
DEFAULT_CHUNK_ROWS = 200_000  # about 20 MB of parsed candles in memory per series at most


@dataclass
class SeriesFetch:
    """One series' fetch: staged chunk files in time order, what it cost, and its error if it failed."""

    since: int
    staged: list[Path] = field(default_factory=list)
    stats: FetchStats = field(default_factory=FetchStats)
    error: str | None = None


def start_ms(store: CandleStore, series: SeriesKey, since_ms: int) -> int:
    """Where fetching resumes: after the last stored candle, else ``since_ms`` rounded up to the grid."""
    step = timeframe_ms(series.timeframe)
    last = store.last_timestamp(series)
    return last + step if last is not None else -(-int(since_ms) // step) * step


def fetch_to_staging(
    settings: Settings, exchange_id: str, series: list[SeriesKey], since_ms: int, **options: Any
) -> dict[SeriesKey, SeriesFetch]:
    """Fetch the closed candles each series lacks, through one async client, into staging chunk files.

    A series with nothing stored starts at ``since_ms``; the others resume after their last stored
    candle. A series whose store cannot be read (a corrupt partition) is reported with its error and
    not fetched; the others go ahead. ``options`` are those of ``fetch_ranges``.
    """
    _one_exchange(exchange_id, series)
    store = CandleStore(settings.candles_dir)
    ranges: dict[SeriesKey, tuple[int, int | None]] = {}
    unreadable: dict[SeriesKey, SeriesFetch] = {}
    for key in series:
        try:
            store.repair(key)  # a run killed mid-write left debris or a stale manifest: this run finishes its job
            ranges[key] = (start_ms(store, key, since_ms), None)
        except CorruptPartition as err:
            unreadable[key] = SeriesFetch(since=int(since_ms), error=f"CorruptPartition: {err}")
    fetched = fetch_ranges(settings, exchange_id, ranges, **options) if ranges else {}
    return {key: fetched.get(key) or unreadable[key] for key in series}


def fetch_ranges(
    settings: Settings,
    exchange_id: str,
    ranges: Mapping[SeriesKey, tuple[int, int | None]],
    *,
    now_ms: int | None = None,
    api_url: str | None = None,
    rate_limit: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    policy: RetryPolicy | None = None,
    timeout_ms: int = 10_000,
    limit: int = 1000,
) -> dict[SeriesKey, SeriesFetch]:
    """Fetch each series' closed candles with ``since <= open < until`` (None: up to now) into staging.

    Args:
        settings: Where staging lives.
        exchange_id: The ccxt id every series belongs to.
        ranges: Series of that exchange -> (since, until) open times in ms.
        now_ms: The exchange clock (the emulator's in tests); default the local UTC clock.
        api_url: A Binance-shaped emulator's base URL; None talks to the real exchange.
        rate_limit: ccxt's client-side throttle, shared by all series of the exchange.
        concurrency: Series fetched at once.
        chunk_rows: Candles per staged file, bounding memory on long backfills.
        policy: Retries for transient errors and malformed pages.
        timeout_ms: Per-request timeout.
        limit: Candles per request (Binance spot allows at most 1000).
    """
    _one_exchange(exchange_id, list(ranges))
    out = {key: SeriesFetch(since=int(since)) for key, (since, _) in ranges.items()}

    def on_chunk(key: SeriesKey, chunk: pd.DataFrame) -> None:
        first, last = int(chunk["timestamp"].iloc[0]), int(chunk["timestamp"].iloc[-1])
        path = settings.staging_dir / f"{key.slug}_{first}_{last}.parquet"
        write_parquet(chunk, path)
        out[key].staged.append(path)

    async def run() -> dict[Any, tuple[FetchStats, BaseException | None]]:
        exchange = make_exchange(exchange_id, api_url, rate_limit, timeout_ms)
        try:
            now = int(now_ms) if now_ms is not None else int(exchange.milliseconds())
            jobs = [FetchJob(key, key.symbol, key.timeframe, int(lo), hi) for key, (lo, hi) in ranges.items()]
            return await fetch_many(
                exchange, jobs, now, on_chunk, concurrency=concurrency, limit=limit, chunk_rows=chunk_rows,
                policy=policy or RetryPolicy(),
            )  # fmt: skip
        finally:
            await exchange.close()

    for key, (stats, error) in _run(run()).items():
        out[key].stats = stats
        out[key].error = None if error is None else f"{type(error).__name__}: {error}"
        log.info("%s: fetched %d candles in %d requests since %d", key, stats.rows, stats.requests, out[key].since)
    return out


def check_markets(exchange_id: str, symbols: list[str], api_url: str | None = None, timeout_ms: int = 10_000) -> None:
    """Raise ``pagination.UnknownMarket`` for symbols the exchange does not list: one load_markets, no candle request.

    An exchange that cannot be reached is left to the fetch, whose retries and messages cover outages.
    """

    async def check() -> None:
        exchange = make_exchange(exchange_id, api_url, True, timeout_ms)
        try:
            try:
                await exchange.load_markets()
            except (ccxt.BaseError, OSError):
                return
            refuse_unknown_markets(exchange, symbols)
        finally:
            await exchange.close()

    _run(check())


def exchange_clock_ms(cfg: RunConfig) -> int:
    """The configured exchange's clock: the emulator's pinned end (``exchange.synthetic_end``), else now.

    A pinned synthetic market is a fixed history: its newest candle is as fresh as it gets, so backfill
    windows and live checks are measured against its clock, not the wall clock.
    """
    end = cfg.exchange.synthetic_end
    if cfg.exchange.emulator and end is not None:
        return int(end.timestamp() * 1000)
    return int(time.time() * 1000)


def fetch_for_config(
    settings: Settings,
    cfg: RunConfig,
    endpoint: Endpoint,
    series: list[SeriesKey] | None = None,
    **fetch_options: Any,
) -> dict[SeriesKey, SeriesFetch]:
    """``fetch_to_staging`` for the run config's series at ``endpoint``, backfilling ``data.history_days`` when empty.

    The caller opens the endpoint (the real exchange or a local emulator) and owns its lifetime.
    """
    series = list(cfg.series if series is None else series)
    since = endpoint.now_ms - cfg.data.history_days * 86_400_000
    return fetch_to_staging(settings, cfg.exchange.id, series, since, **endpoint.fetch_options(), **fetch_options)


def fetch_batch(settings: Settings, cfg: RunConfig, series: SeriesKey, endpoint: Endpoint) -> Path | None:
    """One series' new closed candles in one staging file; None if up to date. Raises its fetch error."""
    fetched = fetch_for_config(settings, cfg, endpoint, [series], chunk_rows=2**62)[series]
    if fetched.error:
        raise RuntimeError(fetched.error)
    return fetched.staged[0] if fetched.staged else None


def _one_exchange(exchange_id: str, series: list[SeriesKey]) -> None:
    others = sorted({s.exchange for s in series} - {exchange_id})
    if others:
        raise ValueError(f"got series of {others} to fetch from exchange {exchange_id!r}: one exchange per call")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even where an event loop already runs (Prefect, Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
