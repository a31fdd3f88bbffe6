"""The live loop's websocket follower: closed candles pushed by ccxt.pro's ``watch_ohlcv``, not polled.

One follower per timeframe watches all its series on one connection (``watch_ohlcv_for_symbols``). A
candle is taken once a newer candle of its series has opened (its close has passed on the exchange
clock); the stream's candles of a close are staged like a REST fetch's and go through the loop's one
batch path (gate, store, announce, forecast). A series whose pushed candles do not continue its store
(first close, a reconnect, missed messages) is fetched over REST in the same batch, from its last
stored candle, so nothing is skipped or doubled. If the stream is silent past a close for ``max_poll_s``,
or fails, the follower polls REST (one log line per outage) and keeps reconnecting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from typing import Any, Protocol

import ccxt.pro as ccxtpro
import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.data.exchange import check_exchange_id, point_at
from candlecast.data.fetching import SeriesFetch
from candlecast.io import write_parquet
from candlecast.live.clock import ClockRate, newest_closed
from candlecast.schema import CANDLE_COLUMNS, SeriesKey, timeframe_ms
from candlecast.settings import Settings

log = logging.getLogger(__name__)

GATHER_S = 0.25  # after a series' close arrives, how long (real s) the others of the close may take to join it
RECONNECT_S = 1.0


class Follower(Protocol):
    """What the websocket follower needs of the loop (live.loop.LiveLoop), without importing it."""

    settings: Settings
    cfg: RunConfig
    api_url: str | None
    ws_url: str | None

    @property
    def pool(self) -> Executor:
        """Where a close's batch runs."""

    def pending(self, keys: list[SeriesKey], due: int) -> list[SeriesKey]:
        """The series whose candle ``due`` is not announced yet."""

    def close(self, keys: list[SeriesKey], now_ms: int, pushed: dict[SeriesKey, SeriesFetch] | None = None) -> None:
        """One close's batch: fetch what ``pushed`` lacks, gate, store, announce, forecast."""

    async def poll(
        self, keys: list[SeriesKey], exchange: object, rate: ClockRate, until_ms: int | None
    ) -> float | None:
        """One REST poll; None once ``until_ms`` is handled."""


def stream_offered(exchange_id: str, transport: str, api_url: str | None, ws_url: str | None) -> bool:
    """Whether the loop follows by websocket: ``auto`` when ccxt.pro offers ``watchOHLCV`` (and an emulator its stream).

    Raises:
        ValueError: ``websocket`` was asked of an exchange (or an emulator URL) without a kline stream.
    """
    if transport == "rest":
        return False
    check_exchange_id(exchange_id)
    offered = bool(getattr(ccxtpro, exchange_id, None) and getattr(ccxtpro, exchange_id)().has.get("watchOHLCV"))
    offered = offered and (api_url is None or ws_url is not None)
    if transport == "websocket" and not offered:
        why = (
            f"the exchange at {api_url} has no kline stream given: pass the --ws-url `candlecast emulate` prints"
            if api_url is not None and ws_url is None
            else f"{exchange_id!r} offers no ccxt.pro watch_ohlcv"
        )
        raise ValueError(f"live.transport is websocket, but {why}, or set live.transport to auto or rest")
    return offered


def make_stream_exchange(exchange_id: str, api_url: str | None = None, ws_url: str | None = None) -> Any:
    """A ccxt.pro client; with an emulator, REST at ``api_url`` (spot markets only) and the stream at ``ws_url``."""
    exchange = getattr(ccxtpro, exchange_id)({"enableRateLimit": True, "timeout": 10_000})
    if api_url is not None:
        point_at(exchange, exchange_id, api_url)
        exchange.urls["api"]["ws"] = {**exchange.urls["api"]["ws"], "spot": ws_url}
    return exchange


async def follow_stream(live: Follower, keys: list[SeriesKey], stop: asyncio.Event, until_ms: int | None) -> None:
    """Follow ``keys`` (one timeframe) by websocket until ``stop`` (or the candle opened at ``until_ms`` is handled)."""
    tf = keys[0].timeframe
    step, by_symbol = timeframe_ms(tf), {k.symbol: k for k in keys}
    seen: dict[SeriesKey, dict[int, list[float]]] = {k: {} for k in keys}  # pushed candles by open time
    exchange = make_stream_exchange(live.cfg.exchange.id, live.api_url, live.ws_url)
    pending: asyncio.Future[Any] | None = None
    taken, failing, lagging, connected, rate = -1, False, False, False, ClockRate()
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            _remember(exchange, tf, by_symbol, seen, taken)  # pushes that came while no watch was awaited included
            due = _newest(seen) - step  # the newest closed candle: a newer one has opened
            if due > taken:
                pending = await _gather(exchange, pending, tf, by_symbol, seen, due + step)
                taken = due = _newest(seen) - step
                await asyncio.get_running_loop().run_in_executor(live.pool, _take, live, keys, seen, due, step)
                if until_ms is not None and due >= until_ms:
                    return
                continue
            pending = pending or asyncio.ensure_future(exchange.watch_ohlcv_for_symbols([[s, tf] for s in by_symbol]))
            done, _ = await asyncio.wait({pending, stopping}, timeout=live.cfg.live.max_poll_s,
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            if stopping in done:
                break
            if pending not in done:  # silent for max_poll_s: REST takes a close the stream missed (seen twice)
                closed = newest_closed(int(await exchange.fetch_time()), step, live.cfg.live.settle_ms)
                missed, lagging = lagging and closed >= _newest(seen), not lagging and closed >= _newest(seen)
                if missed and await live.poll(keys, exchange, rate, until_ms) is None:
                    return
                continue
            task, pending = pending, None
            if task.exception() is None:
                if failing or not connected:
                    log.info("%s stream %s: %d series", tf, "reconnected" if connected else "connected", len(keys))
                failing, connected = False, True
                continue
            if not failing:  # any stream failure: REST until it reconnects
                err = task.exception()
                log.warning("%s stream failed (%s: %s): REST polling until it reconnects", tf, type(err).__name__, err)
            failing = True
            if await live.poll(keys, exchange, rate, until_ms) is None:
                return
            await asyncio.wait({stopping}, timeout=RECONNECT_S)
    finally:
        stopping.cancel()
        if pending is not None:
            pending.cancel()
        await exchange.close()


async def _gather(
    exchange: Any, pending: asyncio.Future[Any] | None, tf: str, by_symbol: dict[str, SeriesKey],
    seen: dict[SeriesKey, dict[int, list[float]]], opened: int,
) -> asyncio.Future[Any] | None:  # fmt: skip
    """Wait up to GATHER_S for every series' candle opened at ``opened`` (so its close is pushed too)."""
    deadline = time.monotonic() + GATHER_S
    while any(max(c, default=-1) < opened for c in seen.values()) and (left := deadline - time.monotonic()) > 0:
        pending = pending or asyncio.ensure_future(exchange.watch_ohlcv_for_symbols([[s, tf] for s in by_symbol]))
        done, _ = await asyncio.wait({pending}, timeout=left)
        if pending not in done:
            break
        task, pending = pending, None
        if task.exception() is not None:  # the main loop sees the next failure; this close goes on without
            break
        _remember(exchange, tf, by_symbol, seen, opened - timeframe_ms(tf))
    return pending


def _newest(seen: dict[SeriesKey, dict[int, list[float]]]) -> int:
    return max((max(c, default=-1) for c in seen.values()), default=-1)


def _remember(exchange: Any, tf: str, by_symbol: dict[str, SeriesKey], seen: dict[SeriesKey, dict[int, list[float]]],
              after: int) -> None:  # fmt: skip
    """Copy each series' candles opened after ``after`` from ccxt's cache (``exchange.ohlcvs``).

    Not from the watch's answer: a push that arrived while no watch was awaited resolves none, yet it is cached.
    """
    for symbol, key in by_symbol.items():
        for candle in reversed(exchange.ohlcvs.get(symbol, {}).get(tf, [])):
            if candle[0] <= after:
                break
            seen[key][int(candle[0])] = candle


def _take(
    live: Follower, keys: list[SeriesKey], seen: dict[SeriesKey, dict[int, list[float]]], due: int, step: int
) -> None:
    """One close's batch: each series' pushed candles where they continue its store, REST for the others."""
    keys = live.pending(keys, due)
    store, pushed = CandleStore(live.settings.candles_dir), {}
    for key in keys:
        try:
            last = store.last_timestamp(key)
        except Exception:  # noqa: BLE001 (an unreadable store: REST's fetch repairs and reports it)
            continue
        wanted = range(last + step, due + step, step) if last is not None else range(0)
        candles = [seen[key].get(t) for t in wanted]
        if wanted and all(c is not None for c in candles):
            frame = pd.DataFrame(candles, columns=CANDLE_COLUMNS).astype({"timestamp": "int64"})
            path = live.settings.staging_dir / f"{key.slug}_{wanted[0]}_{wanted[-1]}.parquet"
            write_parquet(frame, path)
            pushed[key] = SeriesFetch(since=wanted[0], staged=[path])
            pushed[key].stats.rows = len(frame)
    for key in seen:
        seen[key] = {t: c for t, c in seen[key].items() if t > due}
    if keys:
        live.close(keys, due + step, pushed)
    log.debug(
        "%s: close %d, %d of %d series from the stream", keys[0].timeframe if keys else "", due, len(pushed), len(keys)
    )
