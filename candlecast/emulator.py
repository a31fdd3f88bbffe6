"""A local emulator of Binance's public spot REST API, for the real ccxt client.

Tests and the offline demo run the real ``ccxt.binance`` client (its URL building, parsing,
error mapping and pagination) against this server on 127.0.0.1, so nothing in the ingestion path
is mocked and nothing touches the network. Only the few endpoints that candle ingestion needs are
emulated; any other path answers 404 so a new dependency on the exchange shows up loudly.

The emulator has a simulated clock: it serves only candles whose open time is <= ``now_ms``, and
the newest served candle is still forming, exactly as on the real exchange.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from candlecast.schema import CANDLE_COLUMNS, timeframe_ms
from candlecast.synthetic import synthetic_candles

KLINES_PATH = "/api/v3/klines"
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
#: 2024-01-01 00:00 UTC: a fixed origin keeps synthetic emulators reproducible.
DEFAULT_START_MS = 1_704_067_200_000

_HTML_503 = (
    b"<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
    b"<center><h1>503 Service Temporarily Unavailable</h1></center></body></html>"
)
_FAILURE_JSON: dict[int, dict[str, Any]] = {
    418: {"code": -1003, "msg": "Way too many requests; IP banned until further notice."},
    429: {"code": -1003, "msg": "Too many requests; current limit of IP is 6000 weight per 1 MINUTE."},
    500: {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."},
}


@dataclass(frozen=True)
class _Series:
    """One served series as arrays, so a page is a searchsorted and a slice, not a frame filter."""

    ts: np.ndarray  # int64 candle open times, sorted
    values: np.ndarray  # float64, shape (n, 5): open, high, low, close, volume
    tf_ms: int


class _ApiError(Exception):
    """An error answer: HTTP status plus Binance's JSON error body."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _num(x: float) -> str:
    """Format like Binance (a decimal string, never exponent notation) yet round-trip exactly."""
    text = repr(x)
    if "e" in text or "E" in text:
        text = np.format_float_positional(x, unique=True, trim="0")
    return text


def _market_id(symbol: str) -> str:
    """Binance's id for a unified spot symbol: 'BTC/USDT' -> 'BTCUSDT'."""
    return symbol.replace("/", "")


def _symbol_info(symbol: str) -> dict[str, Any]:
    """The smallest exchangeInfo symbol entry ccxt's binance parser accepts (DEPENDENCIES.md section 6)."""
    base, quote = symbol.split("/")
    return {
        "symbol": _market_id(symbol),
        "status": "TRADING",
        "baseAsset": base,
        "quoteAsset": quote,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "permissions": ["SPOT"],
        "permissionSets": [["SPOT"]],
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.00000001",
                "maxPrice": "1000000.00000000",
                "tickSize": "0.00000001",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00000001",
                "maxQty": "9000000.00000000",
                "stepSize": "0.00000001",
            },
        ],
    }


class ExchangeEmulator:
    """Serve candle frames over Binance's public spot REST API on a local port.

    Args:
        candles: Frames with CANDLE_COLUMNS keyed by (unified symbol, timeframe),
            e.g. ``{("BTC/USDT", "1h"): frame}``.
        now_ms: The simulated exchange clock. Defaults to the newest candle's open time plus half
            a timeframe, so that candle is still forming and a correct client must drop it.
        host: Interface to bind; keep it on loopback.
        port: 0 picks a free port (see ``url`` after ``start()``).
    """

    def __init__(
        self,
        candles: Mapping[tuple[str, str], pd.DataFrame],
        now_ms: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._frames: dict[tuple[str, str], pd.DataFrame] = {}
        self._series: dict[tuple[str, str], _Series] = {}
        self._symbols: dict[str, str] = {}  # market id -> unified symbol
        default_now = 0
        for (symbol, timeframe), frame in candles.items():
            if "/" not in symbol:
                raise ValueError(f"emulator keys need unified symbols like 'BTC/USDT', got {symbol!r}")
            missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
            if missing:
                raise ValueError(f"frame for {symbol} {timeframe} lacks columns {missing}")
            tf = timeframe_ms(timeframe)
            frame = frame[CANDLE_COLUMNS].sort_values("timestamp", kind="stable").reset_index(drop=True)
            ts = frame["timestamp"].to_numpy(dtype=np.int64)
            values = frame[CANDLE_COLUMNS[1:]].to_numpy(dtype=np.float64)
            self._frames[(symbol, timeframe)] = frame
            self._series[(_market_id(symbol), timeframe)] = _Series(ts, values, tf)
            self._symbols[_market_id(symbol)] = symbol
            if len(ts):
                default_now = max(default_now, int(ts[-1]) + tf // 2)
        self._lock = threading.Lock()
        self._now_ms = int(now_ms) if now_ms is not None else (default_now or int(time.time() * 1000))
        self._counts: Counter[str] = Counter()
        self._failures: dict[str, deque[int]] = {}
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- clock, counters, fault hooks -------------------------------------------------------

    @property
    def now_ms(self) -> int:
        """The simulated exchange time (ms); only candles opened at or before it are served."""
        with self._lock:
            return self._now_ms

    @now_ms.setter
    def now_ms(self, value: int) -> None:
        with self._lock:
            self._now_ms = int(value)

    @property
    def request_count(self) -> Counter[str]:
        """A snapshot of requests received so far, by path (failed and unknown ones included)."""
        with self._lock:
            return Counter(self._counts)

    def fail_next(self, n: int, status: int = 503, path: str = KLINES_PATH) -> None:
        """Make the next ``n`` requests to ``path`` fail with ``status``, to exercise client retries.

        429 and 418 answer Binance's JSON rate-limit body, 500 its -1001 internal error, anything
        else an HTML page as a load balancer in front of the exchange would.
        """
        with self._lock:
            self._failures.setdefault(path, deque()).extend([int(status)] * int(n))

    def frame(self, symbol: str, timeframe: str) -> pd.DataFrame:
        """A copy of the full source frame of one series (forming and future candles included)."""
        return self._frames[(symbol, timeframe)].copy()

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL such as 'http://127.0.0.1:54321'; known once started."""
        if self._server is None:
            raise RuntimeError("the emulator is not started: call start() or use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ExchangeEmulator:
        """Bind the port and serve in a daemon thread (idempotent)."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((self._host, self._port), self._handler_class())
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="exchange-emulator", daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; shutdown() alone leaves clients hanging until timeout."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> ExchangeEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- request handling -------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "candlecast-emulator/1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                emulator._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                emulator._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Stay quiet: one line per request would drown test output."""

        return Handler

    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(req.path)
        path = split.path
        with self._lock:
            self._counts[path] += 1
            queue = self._failures.get(path)
            failure = queue.popleft() if queue else None
            now = self._now_ms
        if failure is not None:
            if failure in _FAILURE_JSON:
                self._send(req, failure, json.dumps(_FAILURE_JSON[failure]).encode(), {"Retry-After": "1"})
            else:
                self._send(req, failure, _HTML_503, content_type="text/html")
            return
        params = {k: v[-1] for k, v in parse_qs(split.query).items()}
        try:
            if method != "GET":
                raise _ApiError(404, -1, f"not emulated: {method} {path}")
            if path == "/api/v3/ping":
                body: Any = {}
            elif path == "/api/v3/time":
                body = {"serverTime": now}
            elif path == "/api/v3/exchangeInfo":
                body = self._exchange_info(now)
            elif path == KLINES_PATH:
                body = self._klines(params, now)
            else:
                raise _ApiError(404, -1, f"not emulated: {path}")
        except _ApiError as err:
            self._send(req, err.status, json.dumps({"code": err.code, "msg": err.msg}).encode())
            return
        self._send(req, 200, json.dumps(body, separators=(",", ":")).encode())

    @staticmethod
    def _send(
        req: BaseHTTPRequestHandler,
        status: int,
        payload: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json;charset=UTF-8",
    ) -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            req.send_header(key, value)
        req.end_headers()
        req.wfile.write(payload)

    def _exchange_info(self, now: int) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": now,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [_symbol_info(symbol) for symbol in self._symbols.values()],
        }

    @staticmethod
    def _int_param(params: dict[str, str], name: str) -> int | None:
        if name not in params:
            return None
        try:
            return int(params[name])
        except ValueError:
            raise _ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None

    def _klines(self, params: dict[str, str], now: int) -> list[list[Any]]:
        """Binance semantics: rows with startTime <= open <= endTime, oldest first, at most limit.

        Without startTime the newest ``limit`` rows up to endTime (or now) are returned.
        """
        market_id, interval = params.get("symbol"), params.get("interval")
        for name, value in (("symbol", market_id), ("interval", interval)):
            if not value:
                raise _ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        if market_id not in self._symbols:
            raise _ApiError(400, -1121, "Invalid symbol.")
        series = self._series.get((market_id, interval))
        if series is None:
            raise _ApiError(400, -1120, "Invalid interval.")
        limit = self._int_param(params, "limit")
        limit = DEFAULT_LIMIT if limit is None else min(max(limit, 1), MAX_LIMIT)
        start, end = self._int_param(params, "startTime"), self._int_param(params, "endTime")
        last = now if end is None else min(end, now)
        hi = int(np.searchsorted(series.ts, last, side="right"))
        if start is None:
            lo = max(0, hi - limit)
        else:
            lo = int(np.searchsorted(series.ts, start, side="left"))
            hi = min(hi, lo + limit)
        if lo >= hi:
            return []
        tf = series.tf_ms
        rows = []
        times, values = series.ts[lo:hi].tolist(), series.values[lo:hi].tolist()
        for t, (o, h, low, c, v) in zip(times, values, strict=True):
            quote = v * (o + h + low + c) / 4.0
            rows.append(
                [
                    t,
                    _num(o),
                    _num(h),
                    _num(low),
                    _num(c),
                    _num(v),
                    t + tf - 1,
                    _num(quote),
                    int(quote // 1000) + 1,
                    _num(v / 2),
                    _num(quote / 2),
                    "0",
                ]
            )
        return rows


def synthetic_emulator(
    symbols: Iterable[str],
    timeframe: str = "1h",
    start_ms: int = DEFAULT_START_MS,
    n: int = 2_000,
    seed: int = 0,
    now_ms: int | None = None,
) -> ExchangeEmulator:
    """An (unstarted) emulator serving ``synthetic_candles`` for each symbol; use it with ``with``."""
    candles = {
        (symbol, timeframe): synthetic_candles(symbol, start_ms, n, timeframe=timeframe, seed=seed)
        for symbol in symbols
    }
    return ExchangeEmulator(candles, now_ms=now_ms)
