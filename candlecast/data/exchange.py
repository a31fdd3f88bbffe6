"""The ccxt boundary: build an exchange client and fetch closed candles, robustly.

Everything the rest of candlecast knows about exchanges goes through here, so retries, pagination,
the closed-candle rule, page sanity checks and error messages live in one place. ccxt stays an
implementation detail: callers get plain CANDLE_COLUMNS frames back. One pagination state machine
(``_Pager``) serves both the sync client (one series) and the async client (many series at once,
one client per exchange so its rate limiter paces every request to that exchange).
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import ccxt
import ccxt.async_support as accxt
import numpy as np
import pandas as pd

from candlecast.schema import CANDLE_COLUMNS, timeframe_ms

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 10.0

#: Worth retrying: NetworkError and its subclasses (RequestTimeout, DDoSProtection, RateLimitExceeded,
#: ExchangeNotAvailable, OnMaintenance) and Binance's -1001 "internal error", which ccxt raises as a
#: bare OperationFailed.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (ccxt.OperationFailed,)

_HINTS: list[tuple[type[Exception], str]] = [
    (ccxt.BadSymbol, "check the symbol is listed on the exchange, in ccxt's unified form BASE/QUOTE"),
    (ccxt.AuthenticationError, "candles are public data: check or remove the configured API credentials"),
    (ccxt.PermissionDenied, "the exchange refuses this client (region or account restriction)"),
    (ccxt.NotSupported, "this exchange does not offer it through ccxt; pick another exchange"),
    (ccxt.BadRequest, "the exchange rejected the request: check the timeframe, since_ms and limit"),
]


def make_exchange(
    exchange_id: str,
    api_url: str | None = None,
    enable_rate_limit: bool = True,
    timeout_ms: int = 10_000,
    asynchronous: bool = False,
) -> ccxt.Exchange:
    """Build a ccxt client for public market data.

    Args:
        exchange_id: A ccxt id such as 'binance'.
        api_url: Base URL of a Binance-shaped emulator (e.g. ``ExchangeEmulator.url``); every
            ``urls['api']`` entry is pointed at it and market loading is restricted to spot, so
            the client never reaches the real exchange.
        enable_rate_limit: ccxt's client-side throttle; keep it on against real exchanges.
        timeout_ms: Per-request timeout; a stalled request then becomes a retryable RequestTimeout.
        asynchronous: Build the ``ccxt.async_support`` client (close it with ``await exchange.close()``).

    Raises:
        ValueError: The id is not a ccxt exchange, or ``api_url`` is given for a non-Binance-shaped one.
    """
    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(
            f"unknown exchange id {exchange_id!r}{hint}: use one of ccxt.exchanges "
            f"({len(ccxt.exchanges)} ids, e.g. 'binance', 'kraken', 'coinbase')"
        )
    config = {"enableRateLimit": enable_rate_limit, "timeout": timeout_ms}
    exchange: ccxt.Exchange = getattr(accxt if asynchronous else ccxt, exchange_id)(config)
    if api_url is not None:
        api = exchange.urls.get("api")
        if not isinstance(api, dict) or "public" not in api:
            raise ValueError(f"api_url is only supported for Binance-shaped exchanges, not {exchange_id!r}")
        base = api_url.rstrip("/")
        exchange.urls["api"] = {
            key: (f"{base}/api/v3" if key in ("public", "private") else f"{base}/{key}") for key in api
        }
        # The default also loads linear and inverse markets, i.e. fapi/dapi exchangeInfo, which
        # an emulator of the spot API does not serve.
        exchange.options["fetchMarkets"] = {"types": ["spot"]}
        exchange.options["fetchCurrencies"] = False
    return exchange


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry a transient failure: at most ``max_retries`` retries, capped exponential backoff."""

    max_retries: int = 5
    base_s: float = BACKOFF_BASE_S
    cap_s: float = BACKOFF_CAP_S

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")

    def delay(self, attempt: int) -> float:
        return backoff_delay(attempt, self.base_s, self.cap_s)


@dataclass
class FetchStats:
    """What fetching one series cost: filled in while it runs, so it is right even when it fails."""

    requests: int = 0
    retries: int = 0
    rows: int = 0
    bad_pages: list[str] = field(default_factory=list)


def backoff_delay(
    attempt: int,
    base_s: float = BACKOFF_BASE_S,
    cap_s: float = BACKOFF_CAP_S,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): capped exponential with equal jitter.

    Half the delay is fixed so a rate-limited client always backs off; the random half spreads
    out clients that failed together.
    """
    delay = min(cap_s, base_s * 2.0 ** min(attempt, 60))
    return delay / 2.0 + rand() * delay / 2.0


def _rewrap(err: Exception, message: str) -> Exception:
    """The same ccxt error type with a message that names the series, so callers can still catch by type."""
    try:
        return type(err)(message)
    except Exception:  # an exotic constructor: keep the message, lose the subtype
        return ccxt.ExchangeError(message)


def _retry_delay(err: Exception, attempt: int, policy: RetryPolicy, what: str) -> float:
    """The backoff before the next attempt, or raise: at once for permanent errors, after the last retry otherwise."""
    name = type(err).__name__
    if isinstance(err, TRANSIENT_ERRORS):
        if attempt >= policy.max_retries:
            message = f"{what}: gave up after {attempt + 1} attempts ({policy.max_retries} retries)"
            raise _rewrap(err, f"{message}; last error {name}: {err}") from err
        delay = policy.delay(attempt)
        log.warning(
            "%s: %s (attempt %d/%d), retrying in %.2f s", what, name, attempt + 1, policy.max_retries + 1, delay
        )
        return delay
    if isinstance(err, ccxt.BaseError):
        hint = next((h for cls, h in _HINTS if isinstance(err, cls)), "not retried: not transient")
        raise _rewrap(err, f"{what}: {type(err).__name__}: {err} ({hint})") from err
    raise err


def _call(fn: Callable[[], Any], what: str, policy: RetryPolicy, sleep: Callable[[float], None]) -> Any:
    """Call ``fn``, retrying transient errors with backoff and failing at once on permanent ones."""
    for attempt in range(policy.max_retries + 1):
        try:
            return fn()
        except Exception as err:
            sleep(_retry_delay(err, attempt, policy, what))
    raise AssertionError("unreachable")  # pragma: no cover


async def _acall(
    fn: Callable[[], Awaitable[Any]], what: str, policy: RetryPolicy, sleep: Callable[[float], Awaitable[None]]
) -> Any:
    """``_call`` for the async client."""
    for attempt in range(policy.max_retries + 1):
        try:
            return await fn()
        except Exception as err:
            await sleep(_retry_delay(err, attempt, policy, what))
    raise AssertionError("unreachable")  # pragma: no cover


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


def _check_series(exchange: ccxt.Exchange, symbol: str, timeframe: str, what: str) -> None:
    """Permanent problems, found locally after load_markets: no request is spent on them."""
    if symbol not in exchange.markets:
        close = difflib.get_close_matches(symbol, list(exchange.markets), n=3)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        raise ccxt.BadSymbol(
            f"{what}: {exchange.id} has no market {symbol!r}; {hint}"
            "use ccxt's unified form BASE/QUOTE (e.g. 'BTC/USDT') and a symbol the exchange lists"
        )
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


def fetch_closed_candles(
    exchange: ccxt.Exchange,
    symbol: str,
    timeframe: str,
    since_ms: int,
    until_ms: int | None = None,
    limit: int = 1000,
    max_retries: int = 5,
    progress: Callable[[int], None] | None = None,
    *,
    now_ms: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    policy: RetryPolicy | None = None,
    stats: FetchStats | None = None,
) -> pd.DataFrame:
    """Fetch every closed candle with ``since_ms <= open < until_ms``, paginating and retrying.

    A candle is closed when ``open + timeframe <= now``; the forming candle is never returned,
    because its close and volume would change after we store them. A page that no exchange could
    mean (NaN, negative, high < low, conflicting duplicates) is refetched like a transient error;
    if it stays bad it is kept, so the candle contract refuses the batch rather than us guessing.

    Args:
        exchange: A ccxt client, e.g. from ``make_exchange``; markets are loaded once if needed.
        symbol: Unified symbol such as 'BTC/USDT'.
        timeframe: ccxt timeframe such as '1h'; must be one the exchange offers.
        since_ms: Earliest candle open time wanted (UTC ms).
        until_ms: Exclusive upper bound on open time; None means up to now.
        limit: Candles per request (Binance spot allows at most 1000).
        max_retries: Retries per request for transient errors (ignored when ``policy`` is given).
        progress: Called after each page with the number of rows received so far.
        now_ms: The exchange's clock; defaults to ``exchange.milliseconds()`` (local UTC time).
            Tests pass the emulator's simulated clock.
        sleep: Injected so tests can run the backoff without waiting.
        policy: Retry policy; default ``RetryPolicy(max_retries)``.
        stats: Filled with requests, retries and rows as the fetch runs.

    Returns:
        CANDLE_COLUMNS with int64 timestamps, float64 values, sorted and unique by timestamp.

    Raises:
        ValueError: Bad arguments, or a timeframe the exchange does not offer.
        ccxt.BadSymbol, ccxt.BadRequest, ccxt.AuthenticationError, ...: permanent errors, at once.
        ccxt.OperationFailed (the last transient error's type): retries exhausted.
    """
    tf = timeframe_ms(timeframe)
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    policy = policy or RetryPolicy(max_retries)
    stats = stats if stats is not None else FetchStats()
    what = f"{exchange.id} {symbol} {timeframe}"
    if not exchange.markets:
        _call(exchange.load_markets, what, policy, sleep)
    _check_series(exchange, symbol, timeframe, what)
    now = int(now_ms) if now_ms is not None else int(exchange.milliseconds())
    pager = _Pager(since_ms, _last_open(now, tf, until_ms), tf, limit)
    while not pager.done:
        since, page_limit = pager.request()
        page = _fetch_page(exchange, symbol, timeframe, since, page_limit, what, policy, stats, sleep)
        pager.feed(page)
        if progress is not None:
            progress(stats.rows)
    return pager.take()


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


def _fetch_page(
    exchange: ccxt.Exchange,
    symbol: str,
    timeframe: str,
    since: int,
    limit: int,
    what: str,
    policy: RetryPolicy,
    stats: FetchStats,
    sleep: Callable[[float], None],
) -> list[list[Any]]:
    """One page, retried on transient errors and on malformed pages."""
    tf = timeframe_ms(timeframe)
    for attempt in range(policy.max_retries + 1):
        stats.requests += 1
        try:
            page = exchange.fetch_ohlcv(symbol, timeframe, since=since, limit=limit)
        except Exception as err:
            delay = _retry_delay(err, attempt, policy, what)
        else:
            if _accept(page, attempt, tf, what, since, policy, stats):
                return page
            delay = policy.delay(attempt)
        stats.retries += 1
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


async def _afetch_page(
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
    """``_fetch_page`` for the async client."""
    tf = timeframe_ms(timeframe)
    for attempt in range(policy.max_retries + 1):
        stats.requests += 1
        try:
            page = await exchange.fetch_ohlcv(symbol, timeframe, since=since, limit=limit)
        except Exception as err:
            delay = _retry_delay(err, attempt, policy, what)
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
    policy: RetryPolicy = RetryPolicy(),
    stats: FetchStats | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[pd.DataFrame]:
    """``fetch_closed_candles`` for an async client, yielding chunks of at most about ``chunk_rows`` candles.

    Chunks are disjoint and in time order, so a caller can store each one as it arrives and a long
    backfill never holds years of minute candles in memory. Markets must already be loaded.
    """
    tf = timeframe_ms(timeframe)
    stats = stats if stats is not None else FetchStats()
    what = f"{exchange.id} {symbol} {timeframe}"
    _check_series(exchange, symbol, timeframe, what)
    pager = _Pager(since_ms, _last_open(now_ms, tf, until_ms), tf, limit)
    while not pager.done:
        since, page_limit = pager.request()
        pager.feed(await _afetch_page(exchange, symbol, timeframe, since, page_limit, what, policy, stats, sleep))
        if pager.buffered >= chunk_rows:
            yield pager.take()
    if pager.buffered:
        yield pager.take()


@dataclass(frozen=True)
class FetchJob:
    """One series to fetch: ccxt symbol and timeframe, from ``since_ms`` up to the closed candles at ``now_ms``."""

    key: Any  # the caller's handle for the series, passed back to on_chunk
    symbol: str
    timeframe: str
    since_ms: int


async def fetch_many(
    exchange: Any,
    jobs: Iterable[FetchJob],
    now_ms: int,
    on_chunk: Callable[[Any, pd.DataFrame], None],
    *,
    concurrency: int = 4,
    chunk_rows: int = 200_000,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> dict[Any, tuple[FetchStats, BaseException | None]]:
    """Fetch many series of one exchange at once through one async client.

    One client means one rate limiter: ccxt paces every request to this exchange, however many
    series run; ``concurrency`` bounds how many series are in flight. A series that fails (an unknown
    symbol, retries exhausted) does not stop the others: its error comes back beside its stats.
    """
    jobs = list(jobs)
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    gate = asyncio.Semaphore(concurrency)
    results: dict[Any, tuple[FetchStats, BaseException | None]] = {}
    if not exchange.markets:
        await _acall(exchange.load_markets, f"{exchange.id} markets", policy, sleep)

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
