"""The ccxt boundary: build an exchange client and fetch closed candles, robustly.

Everything the rest of candlecast knows about exchanges goes through here, so retries, pagination,
the closed-candle rule and error messages live in one place. ccxt stays an implementation detail:
callers get plain CANDLE_COLUMNS frames back.
"""

from __future__ import annotations

import difflib
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import ccxt
import numpy as np
import pandas as pd

from candlecast.schema import CANDLE_COLUMNS, timeframe_ms

log = logging.getLogger(__name__)

T = TypeVar("T")

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
) -> ccxt.Exchange:
    """Build a ccxt client for public market data.

    Args:
        exchange_id: A ccxt id such as 'binance'.
        api_url: Base URL of a Binance-shaped emulator (e.g. ``ExchangeEmulator.url``); every
            ``urls['api']`` entry is pointed at it and market loading is restricted to spot, so
            the client never reaches the real exchange.
        enable_rate_limit: ccxt's client-side throttle; keep it on against real exchanges.
        timeout_ms: Per-request timeout; a stalled request then becomes a retryable RequestTimeout.

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
    exchange: ccxt.Exchange = getattr(ccxt, exchange_id)(config)
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


def _call(
    fn: Callable[..., T],
    *args: Any,
    what: str,
    max_retries: int,
    sleep: Callable[[float], None],
    **kwargs: Any,
) -> T:
    """Call ``fn``, retrying transient errors with backoff and failing at once on permanent ones."""
    for attempt in range(max_retries + 1):
        try:
            return fn(*args, **kwargs)
        except TRANSIENT_ERRORS as err:
            name = type(err).__name__
            if attempt >= max_retries:
                message = f"{what}: gave up after {attempt + 1} attempts ({max_retries} retries)"
                raise _rewrap(err, f"{message}; last error {name}: {err}") from err
            delay = backoff_delay(attempt)
            tries = max_retries + 1
            log.warning("%s: %s (attempt %d/%d), retrying in %.2f s", what, name, attempt + 1, tries, delay)
            sleep(delay)
        except ccxt.BaseError as err:
            hint = next((h for cls, h in _HINTS if isinstance(err, cls)), "not retried: not transient")
            raise _rewrap(err, f"{what}: {type(err).__name__}: {err} ({hint})") from err
    raise AssertionError("unreachable")  # pragma: no cover


def _empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: np.array([], dtype="float64") for c in CANDLE_COLUMNS})
    return frame.astype({"timestamp": "int64"})


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
) -> pd.DataFrame:
    """Fetch every closed candle with ``since_ms <= open < until_ms``, paginating and retrying.

    A candle is closed when ``open + timeframe <= now``; the forming candle is never returned,
    because its close and volume would change after we store them.

    Args:
        exchange: A ccxt client, e.g. from ``make_exchange``; markets are loaded once if needed.
        symbol: Unified symbol such as 'BTC/USDT'.
        timeframe: ccxt timeframe such as '1h'; must be one the exchange offers.
        since_ms: Earliest candle open time wanted (UTC ms).
        until_ms: Exclusive upper bound on open time; None means up to now.
        limit: Candles per request (Binance spot allows at most 1000).
        max_retries: Retries per request for transient errors (so at most max_retries + 1 attempts).
        progress: Called after each page with the number of rows received so far.
        now_ms: The exchange's clock; defaults to ``exchange.milliseconds()`` (local UTC time).
            Tests pass the emulator's simulated clock.
        sleep: Injected so tests can run the backoff without waiting.

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
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    what = f"{exchange.id} {symbol} {timeframe}"
    retry: dict[str, Any] = {"what": what, "max_retries": max_retries, "sleep": sleep}

    if not exchange.markets:
        _call(exchange.load_markets, **retry)
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

    now = int(now_ms) if now_ms is not None else int(exchange.milliseconds())
    last_open = now - tf  # the newest closed candle opens at or before this
    if until_ms is not None:
        last_open = min(last_open, int(until_ms) - 1)

    rows: list[list[Any]] = []
    cursor = int(since_ms)
    while cursor <= last_open:
        # Ask only for what can be closed: fewer rows, and a lower request weight on Binance.
        page_limit = min(limit, (last_open - cursor) // tf + 1)
        page = _call(exchange.fetch_ohlcv, symbol, timeframe, since=cursor, limit=page_limit, **retry)
        if not page:
            break
        rows.extend(page)
        if progress is not None:
            progress(len(rows))
        newest = max(int(row[0]) for row in page)
        if newest < cursor:  # the exchange ignored `since`: stop rather than loop forever
            break
        cursor = newest + tf

    if not rows:
        return _empty_frame()
    ts = np.fromiter((int(row[0]) for row in rows), dtype=np.int64, count=len(rows))
    values = np.array([row[1:6] for row in rows], dtype=np.float64)  # None (missing volume) -> NaN
    frame = pd.DataFrame(values, columns=CANDLE_COLUMNS[1:])
    frame.insert(0, "timestamp", ts)
    # The forming candle and anything outside the range go, even if the exchange sent them.
    frame = frame[(frame["timestamp"] >= since_ms) & (frame["timestamp"] <= last_open)]
    frame = frame.drop_duplicates("timestamp", keep="last").sort_values("timestamp", kind="stable")
    return frame.reset_index(drop=True)
