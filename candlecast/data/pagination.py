"""Pagination: walk an exchange's candle pages to exactly the closed candles, for many series at once.

``fetch_many`` is what production runs: every series of one exchange through one async ccxt client,
so ccxt's rate limiter paces every request to that exchange however many series are in flight. Each
series is a ``_Pager`` (which request comes next, what was received) fed by ``_fetch_page`` (one page,
retried on transient errors and on pages no exchange could mean), and every page is clipped to the
closed range, so overlapping, repeated or overlong pages and the forming candle never leak through.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import ccxt
import numpy as np
import pandas as pd

from candlecast.data.exchange import FetchStats, RetryPolicy, call_with_retries, retry_delay
from candlecast.schema import CANDLE_COLUMNS, timeframe_ms

log = logging.getLogger(__name__)

DEFAULT_POLICY = RetryPolicy()


def page_problem(page: list[list[Any]], tf_ms: int) -> str | None:
    """Why ``page`` cannot be closed candles, or None; cheap (vectorised) so every page is checked."""
    if not page:
        return None
    try:
        arr = np.array([row[:6] for row in page], dtype=np.float64)  # None -> NaN
    except (TypeError, ValueError) as err:
        return f"unparseable row ({err})"
    if arr.ndim != 2 or arr.shape[1] != 6:
        return "rows without 6 fields (timestamp, open, high, low, close, volume)"
    ts, o, h, lo, c, v = arr.T
    checks = [
        (~np.isfinite(arr).all(axis=1), "missing or non-finite values"),
        ((ts % tf_ms) != 0, "timestamps off the timeframe grid"),
        ((arr[:, 1:5] <= 0).any(axis=1) | (v < 0), "non-positive price or negative volume"),
        ((h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (h < lo), "high/low not bracketing open and close"),
    ]
    for bad, why in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            return f"{int(bad.sum())} row(s) with {why}, first {page[i]}"
    if len(np.unique(ts)) != len(ts) and len(np.unique(arr, axis=0)) != len(np.unique(ts)):
        return "one timestamp with different values"
    return None


class _Pager:
    """The pagination state machine: which request comes next, and the closed candles received so far.

    Each page is clipped to ``[cursor, last_open]`` so pages that overlap, repeat or run past the
    closed range (the forming candle) never reach the output, and chunks never overlap.
    """

    def __init__(self, since_ms: int, last_open: int, tf_ms: int, limit: int):
        self.cursor, self.last_open, self.tf, self.limit = int(since_ms), int(last_open), tf_ms, limit
        self.done = self.cursor > self.last_open
        self._parts: list[np.ndarray] = []
        self.buffered = 0

    def request(self) -> tuple[int, int]:
        """(since, limit) of the next request; ask only for what can be closed (a lower request weight)."""
        return self.cursor, min(self.limit, (self.last_open - self.cursor) // self.tf + 1)

    def feed(self, page: list[list[Any]]) -> None:
        if not page:
            self.done = True
            return
        arr = np.array([row[:6] for row in page], dtype=np.float64)
        newest = int(arr[:, 0].max())
        arr = arr[(arr[:, 0] >= self.cursor) & (arr[:, 0] <= self.last_open)]
        self._parts.append(arr)
        self.buffered += len(arr)
        if newest < self.cursor:  # the exchange ignored `since`: stop rather than loop forever
            self.done = True
            return
        self.cursor = newest + self.tf
        self.done = self.cursor > self.last_open

    def take(self) -> pd.DataFrame:
        """The buffered candles as a frame (sorted, unique by timestamp), emptying the buffer."""
        arr = np.concatenate(self._parts) if self._parts else np.empty((0, 6))
        self._parts, self.buffered = [], 0
        frame = pd.DataFrame(arr[:, 1:], columns=CANDLE_COLUMNS[1:])
        frame.insert(0, "timestamp", arr[:, 0].astype(np.int64))
        frame = frame.drop_duplicates("timestamp", keep="last").sort_values("timestamp", kind="stable")
        return frame.reset_index(drop=True)


class UnknownMarket(ValueError):
    """Symbols the exchange does not list: found from its market list before any candle is requested."""


def market_problem(exchange: Any, symbol: str) -> str | None:
    """Why ``symbol`` cannot be fetched from ``exchange`` (markets loaded), naming close matches or a few it lists."""
    if symbol in exchange.markets:
        return None
    listed = sorted(exchange.markets)
    close = difflib.get_close_matches(symbol, listed, n=3)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    few = ", ".join(listed[:5]) + (", ..." if len(listed) > 5 else "")
    return f"{exchange.id} has no market {symbol!r}{hint}; it lists {len(listed)}: {few or 'none'}"


def refuse_unknown_markets(exchange: Any, symbols: Iterable[str]) -> None:
    """Raise ``UnknownMarket``, in one line, for the symbols ``exchange`` (markets loaded) does not list."""
    unknown = [p for p in dict.fromkeys(market_problem(exchange, s) for s in symbols) if p]
    if unknown:
        raise UnknownMarket("; ".join(unknown) + ": use a symbol it lists (ccxt's unified form BASE/QUOTE)")


def _check_series(exchange: Any, symbol: str, timeframe: str, what: str) -> None:
    """Permanent problems, found locally after load_markets: no request is spent on them."""
    problem = market_problem(exchange, symbol)
    if problem:
        raise ccxt.BadSymbol(f"{what}: {problem} (use ccxt's unified form BASE/QUOTE and a symbol the exchange lists)")
    if not exchange.has.get("fetchOHLCV"):
        raise ccxt.NotSupported(f"{what}: {exchange.id} offers no candles (fetchOHLCV) through ccxt")
    if exchange.timeframes and timeframe not in exchange.timeframes:
        raise ValueError(
            f"{what}: {exchange.id} does not offer timeframe {timeframe!r}; "
            f"choose one of {', '.join(exchange.timeframes)}"
        )


def _last_open(now_ms: int, tf: int, until_ms: int | None) -> int:
    """The newest open time that is closed at ``now_ms`` and below ``until_ms``."""
    last_open = now_ms - tf
    return last_open if until_ms is None else min(last_open, int(until_ms) - 1)


def _accept(
    page: list[list[Any]], attempt: int, tf: int, what: str, since: int, policy: RetryPolicy, stats: FetchStats
) -> bool:
    """Whether to keep a page: yes when sane, or when it stayed bad through every retry (the gate decides)."""
    problem = page_problem(page, tf)
    if problem is None:
        stats.rows += len(page)
        return True
    if attempt >= policy.max_retries:
        log.warning(
            "%s: page since %d still malformed after %d attempts, kept for the gate: %s",
            what,
            since,
            attempt + 1,
            problem,
        )
        stats.bad_pages.append(f"since {since}: {problem}")
        stats.rows += len(page)
        return True
    log.warning("%s: malformed page since %d (%s), refetching", what, since, problem)
    return False


async def _fetch_page(
    exchange: Any,
    symbol: str,
    timeframe: str,
    since: int,
    limit: int,
    what: str,
    policy: RetryPolicy,
    stats: FetchStats,
    sleep: Callable[[float], Awaitable[None]],
) -> list[list[Any]]:
    """One page, retried on transient errors and on malformed pages."""
    tf = timeframe_ms(timeframe)
    for attempt in range(policy.max_retries + 1):
        stats.requests += 1
        try:
            page = await exchange.fetch_ohlcv(symbol, timeframe, since=since, limit=limit)
        except Exception as err:
            delay = retry_delay(err, attempt, policy, what)
        else:
            if _accept(page, attempt, tf, what, since, policy, stats):
                return page
            delay = policy.delay(attempt)
        stats.retries += 1
        await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


async def aiter_closed_candles(
    exchange: Any,
    symbol: str,
    timeframe: str,
    since_ms: int,
    now_ms: int,
    *,
    until_ms: int | None = None,
    limit: int = 1000,
    chunk_rows: int = 200_000,
    policy: RetryPolicy = DEFAULT_POLICY,
    stats: FetchStats | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[pd.DataFrame]:
    """Every closed candle with ``since_ms <= open < until_ms``, in chunks of at most about ``chunk_rows``.

    A candle is closed when ``open + timeframe <= now_ms``; the forming candle is never returned,
    because its close and volume would change after we store them. A page that no exchange could
    mean (NaN, negative, high < low, conflicting duplicates) is refetched like a transient error;
    if it stays bad it is kept, so the candle contract refuses the batch rather than us guessing.
    Chunks are disjoint and in time order, so a caller can store each one as it arrives and a long
    backfill never holds years of minute candles in memory. Markets must already be loaded.

    Raises:
        ValueError: A timeframe the exchange does not offer.
        ccxt.BadSymbol, ccxt.BadRequest, ccxt.AuthenticationError, ...: permanent errors, at once.
        ccxt.OperationFailed (the last transient error's type): retries exhausted.
    """
    tf = timeframe_ms(timeframe)
    stats = stats if stats is not None else FetchStats()
    what = f"{exchange.id} {symbol} {timeframe}"
    _check_series(exchange, symbol, timeframe, what)
    pager = _Pager(since_ms, _last_open(now_ms, tf, until_ms), tf, limit)
    while not pager.done:
        since, page_limit = pager.request()
        pager.feed(await _fetch_page(exchange, symbol, timeframe, since, page_limit, what, policy, stats, sleep))
        if pager.buffered >= chunk_rows:
            yield pager.take()
    if pager.buffered:
        yield pager.take()


@dataclass(frozen=True)
class FetchJob:
    """One series to fetch: ccxt symbol and timeframe, from ``since_ms`` to the closed candles (before ``until_ms``)."""

    key: Any  # the caller's handle for the series, passed back to on_chunk
    symbol: str
    timeframe: str
    since_ms: int
    until_ms: int | None = None  # exclusive bound on open time: a repair refetches one period only


async def fetch_many(
    exchange: Any,
    jobs: Iterable[FetchJob],
    now_ms: int,
    on_chunk: Callable[[Any, pd.DataFrame], None],
    *,
    concurrency: int = 4,
    limit: int = 1000,
    chunk_rows: int = 200_000,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> dict[Any, tuple[FetchStats, BaseException | None]]:
    """Fetch many series of one exchange at once through one async client.

    One client means one rate limiter: ccxt paces every request to this exchange, however many
    series run; ``concurrency`` bounds how many series are in flight. A series that fails (retries
    exhausted, a timeframe not offered) does not stop the others: its error comes back beside its stats.
    When the market list cannot be loaded, every series comes back with that error.
    ``limit`` is the candles asked per request (Binance spot allows at most 1000).

    Raises:
        UnknownMarket: A symbol the exchange does not list; checked for every job before any candle
            request, so a typo in a symbol list fetches (and creates) nothing.
    """
    jobs = list(jobs)
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    gate = asyncio.Semaphore(concurrency)
    results: dict[Any, tuple[FetchStats, BaseException | None]] = {}
    if not exchange.markets:
        try:
            await call_with_retries(exchange.load_markets, f"{exchange.id} markets", policy, sleep)
        except (ccxt.BaseError, OSError) as err:  # no market list, no series: each reports why
            return {job.key: (FetchStats(), err) for job in jobs}
    refuse_unknown_markets(exchange, [job.symbol for job in jobs])

    async def one(job: FetchJob) -> None:
        stats = FetchStats()
        error: BaseException | None = None
        async with gate:
            try:
                async for chunk in aiter_closed_candles(
                    exchange,
                    job.symbol,
                    job.timeframe,
                    job.since_ms,
                    now_ms,
                    until_ms=job.until_ms,
                    limit=limit,
                    chunk_rows=chunk_rows,
                    policy=policy,
                    stats=stats,
                    sleep=sleep,
                ):
                    on_chunk(job.key, chunk)
            except (ccxt.BaseError, ValueError, OSError) as err:
                error = err
        results[job.key] = (stats, error)

    await asyncio.gather(*(one(job) for job in jobs))
    return results
