"""The ccxt boundary: build an exchange client, and decide what is worth retrying and how long to wait.

Everything the rest of candlecast knows about exchanges goes through here and ``pagination``: this
module builds the (async) client, classifies ccxt's errors into transient and permanent ones, and
turns permanent ones into a message that names the series and what to do. ``pagination`` walks the
pages with this policy. ccxt stays an implementation detail: callers get plain candle frames back.
"""

from __future__ import annotations

import difflib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import ccxt
import ccxt.async_support as accxt

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
) -> accxt.Exchange:
    """Build an async ccxt client for public market data (close it with ``await exchange.close()``).

    Async because production fetches many series at once through one client, so one rate limiter
    paces every request to the exchange (see ``pagination.fetch_many``).

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
    check_exchange_id(exchange_id)
    config = {"enableRateLimit": enable_rate_limit, "timeout": timeout_ms}
    exchange: accxt.Exchange = getattr(accxt, exchange_id)(config)
    if api_url is not None:
        point_at(exchange, exchange_id, api_url)
    return exchange


def point_at(exchange: Any, exchange_id: str, api_url: str) -> None:
    """Send a Binance-shaped client's REST calls to ``api_url`` (an emulator of the spot API); its stream URLs stay."""
    api = exchange.urls.get("api")
    if not isinstance(api, dict) or "public" not in api:
        raise ValueError(f"api_url is only supported for Binance-shaped exchanges, not {exchange_id!r}")
    base = api_url.rstrip("/")
    exchange.urls["api"] = {
        key: value if key == "ws" else f"{base}/api/v3" if key in ("public", "private") else f"{base}/{key}"
        for key, value in api.items()
    }
    # The default also loads linear and inverse markets, i.e. fapi/dapi exchangeInfo, which
    # an emulator of the spot API does not serve.
    exchange.options["fetchMarkets"] = {"types": ["spot"]}
    exchange.options["fetchCurrencies"] = False


def check_exchange_id(exchange_id: str) -> str:
    """``exchange_id`` if ccxt knows it; else ValueError in one line with the close matches (no request made)."""
    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(
            f"unknown exchange id {exchange_id!r}{hint}: use one of ccxt.exchanges "
            f"({len(ccxt.exchanges)} ids, e.g. 'binance', 'kraken', 'coinbase')"
        )
    return exchange_id


@dataclass(frozen=True)
class Endpoint:
    """Where one run's fetches go and the exchange's clock, picked by the caller (the composition root).

    The data layer only uses it: whether ``api_url`` is a local emulator or None (the real exchange)
    is decided by the CLI or the flow's task, so ``candlecast.data`` never knows the test double.
    """

    now_ms: int
    api_url: str | None = None
    rate_limit: bool = True

    def fetch_options(self) -> dict[str, Any]:
        """As the keyword options of ``fetching.fetch_ranges`` (and everything that passes them on)."""
        return {"now_ms": self.now_ms, "api_url": self.api_url, "rate_limit": self.rate_limit}


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
        """Seconds to wait before retry ``attempt`` (0-based)."""
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


def retry_delay(err: Exception, attempt: int, policy: RetryPolicy, what: str) -> float:
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


async def call_with_retries(
    fn: Callable[[], Awaitable[Any]], what: str, policy: RetryPolicy, sleep: Callable[[float], Awaitable[None]]
) -> Any:
    """Await ``fn()``, retrying transient errors with backoff and failing at once on permanent ones."""
    for attempt in range(policy.max_retries + 1):
        try:
            return await fn()
        except Exception as err:
            await sleep(retry_delay(err, attempt, policy, what))
    raise AssertionError("unreachable")  # pragma: no cover
