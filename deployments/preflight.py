"""Checks `candlecast run` makes before it starts anything: mistakes a user can fix, found in a second.

Without them an unknown exchange id is retried, an unreachable URL is retried with backoff, and a
history too short for the folds is found only after candles were fetched and stored, each ending in
pages of tracebacks. Each check raises ``PreflightError`` (a ValueError) whose one-line message names
the setting at fault and what to do; nothing has been fetched or written when it does.
"""

from __future__ import annotations

import socket
import time
from types import SimpleNamespace
from urllib.parse import urlparse

import numpy as np

from candlecast.config import RunConfig
from candlecast.schema import timeframe_ms
from candlecast.settings import Settings

DAY_MS = 86_400_000


class PreflightError(ValueError):
    """A run config or endpoint that cannot work; the message says which setting and what to do."""


def check_run(cfg: RunConfig, settings: Settings) -> None:
    """Every check, cheapest first: exchange id, endpoint, stored files, markets and sources, history needed.

    An unreadable stored file raises the store's CorruptPartition (exit 3 and its repair), not a PreflightError.
    """
    check_exchange_id(cfg.exchange.id)
    if cfg.exchange.api_url and not cfg.exchange.emulator:
        check_reachable(cfg.exchange.api_url)
    check_store(cfg, settings)
    check_sources(cfg, settings)
    check_history(cfg, settings)


def check_store(cfg: RunConfig, settings: Settings) -> None:
    """Every stored file of the configured series is readable: else the run would fail at ingest, minutes in."""
    from candlecast.data.candle_store import CandleStore

    store = CandleStore(settings.candles_dir)
    for key in cfg.series:
        store.manifest(key)  # raises CorruptPartition naming the file and `candlecast store repair`


def check_sources(cfg: RunConfig, settings: Settings) -> None:
    """The exchange (or the emulator) lists every configured symbol; no stored series is from another source."""
    from candlecast.data.fetching import check_markets
    from candlecast.data.ingest import check_sources as check_stored_sources
    from candlecast.tasks.endpoint import endpoint_source

    try:
        if cfg.exchange.emulator:
            from candlecast.devtools.market import check_synthetic_symbols

            check_synthetic_symbols(cfg.data.symbols)
        else:  # one market list, no candle request; an unreachable exchange is left to the fetch's retries
            check_markets(cfg.exchange.id, list(cfg.data.symbols), cfg.exchange.api_url)
        check_stored_sources(settings, cfg.series, endpoint_source(cfg), allow_change=False)
    except ValueError as exc:
        raise PreflightError(str(exc)) from None


def check_exchange_id(exchange_id: str) -> None:
    """The id names a ccxt exchange (the same message as the fetch would give, with close matches)."""
    import asyncio

    from candlecast.data.exchange import make_exchange

    try:
        exchange = make_exchange(exchange_id)
    except ValueError as exc:
        raise PreflightError(f"exchange.id: {exc}") from None
    asyncio.run(exchange.close())


def check_reachable(url: str, timeout_s: float = 3.0) -> None:
    """Something listens at the URL's host and port (one TCP connect; no request is made)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise PreflightError(f"exchange.api_url {url!r} is not an http(s) URL: write it like http://127.0.0.1:8765")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PreflightError(
            f"cannot reach the exchange at {url} ({reason}): start it (`candlecast emulate --port {port}`) "
            "or fix --api-url / exchange.api_url"
        ) from None


def expected_candles(cfg: RunConfig, settings: Settings, now_ms: int | None = None) -> int:
    """The most candles any series can hold after this run's ingest: stored ones or the backfill window."""
    from candlecast.data.candle_store import CandleStore, CorruptPartition

    step = timeframe_ms(cfg.data.timeframe)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    since = now - cfg.data.history_days * DAY_MS
    if cfg.exchange.emulator:
        end = getattr(cfg.exchange, "synthetic_end", None)
        now = int(end.timestamp() * 1000) if end is not None else now
        since = max(since, int(cfg.exchange.synthetic_start.timestamp() * 1000))
    window = max((now - since) // step, 0)
    store = CandleStore(settings.candles_dir)
    stored = []
    for key in cfg.series:
        try:
            stored.append((store.manifest(key) or {}).get("rows", 0))
        except CorruptPartition:
            stored.append(0)  # check_store names the file; the count is unknown until it is repaired
    return max([window, *stored])


def check_history(cfg: RunConfig, settings: Settings, now_ms: int | None = None) -> None:
    """The folds of the sweep and evaluation fit in the candles this run can have (before feature warm-up)."""
    from candlecast.forecasting.splits import make_plan

    n = expected_candles(cfg, settings, now_ms)
    step = timeframe_ms(cfg.data.timeframe)
    timeline = SimpleNamespace(timestamps=np.arange(max(n, 1), dtype=np.int64) * step)
    try:
        make_plan([timeline], cfg)
    except ValueError as exc:
        raise PreflightError(f"{exc} (data.history_days is {cfg.data.history_days})") from None
