"""A local emulator of Binance's public spot REST API, for the real ccxt client.

Tests and the offline demo run the real ``ccxt.binance`` client (its URL building, parsing,
error mapping and pagination) against this server on 127.0.0.1, so nothing in the ingestion path
is mocked and nothing touches the network. Only the few endpoints that candle ingestion needs are
emulated; any other path answers 404 so a new dependency on the exchange shows up loudly.

The emulator has a simulated clock: it serves only candles whose open time is <= ``now_ms``, and
the newest served candle is still forming (with partial values, as on the real exchange). The clock
can stand still (tests move it), or run ``speed`` times faster than real time so new candles appear.
It replays candle files (``from_files``) or the seeded synthetic generator, and injects faults on
demand (``fail_next``, ``inject``, ``chaos``): 429/418 storms, 5xx, timeouts, truncated pages,
duplicate and out-of-order candles, malformed rows and a forming last candle, plus an optional rate
limit. Faults are what the client must survive: every fault leaves the true candles recoverable by
a retry or by the closed-candle rule.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import CANDLE_COLUMNS, timeframe_ms

KLINES_PATH = "/api/v3/klines"
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
#: 2024-01-01 00:00 UTC: a fixed origin keeps synthetic emulators reproducible.
DEFAULT_START_MS = 1_704_067_200_000

#: Faults ``inject`` and ``chaos`` understand; HTTP statuses answer an error, the rest alter a klines page.
PAGE_FAULTS = ("timeout", "truncate", "duplicate", "shuffle", "malformed", "forming")
STATUS_FAULTS = ("429", "418", "500", "503")
FAULTS = STATUS_FAULTS + PAGE_FAULTS
#: What a candle file is called: ``binance_BTC-USDT_1h.csv(.gz)``, as in ../shared/data.
_FILE_NAME = re.compile(r"^(?P<exchange>[a-z0-9]+)_(?P<base>[^_-]+)-(?P<quote>[^_-]+)_(?P<tf>\d+[mhdw])\.csv(\.gz)?$")

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
    rows: list[str]  # each candle's JSON row, encoded once: serving a page is then a join


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


def _row(t: int, o: float, h: float, low: float, c: float, v: float, tf: int) -> list[Any]:
    """One Binance kline: open time, OHLCV as decimal strings, close time, quote volume, trades, taker volumes."""
    quote = v * (o + h + low + c) / 4.0
    return [
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


def _encode(row: list[Any]) -> str:
    return json.dumps(row, separators=(",", ":"))


def _encode_rows(ts: np.ndarray, values: np.ndarray, tf: int) -> list[str]:
    """``_encode(_row(...))`` for every candle, column by column: 5x faster, so replaying years starts at once."""
    o, h, low, c, v = values.T
    quote = v * (o + h + low + c) / 4.0
    text = [[_num(x) for x in col.tolist()] for col in (o, h, low, c, v, quote, v / 2, quote / 2)]
    trades = (quote // 1000 + 1).astype(np.int64).tolist()
    return [
        f'[{t},"{a}","{b}","{d}","{e}","{f}",{t + tf - 1},"{q}",{n},"{bv}","{bq}","0"]'
        for t, a, b, d, e, f, q, n, bv, bq in zip(ts.tolist(), *text[:6], trades, *text[6:], strict=True)
    ]


def load_candle_file(path: str | Path) -> tuple[str, str, pd.DataFrame]:
    """(unified symbol, timeframe, candles) from a ``EXCHANGE_BASE-QUOTE_TF.csv[.gz]`` file of ../shared/data."""
    path = Path(path)
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise ValueError(
            f"cannot tell the series of {path.name!r}: name candle files EXCHANGE_BASE-QUOTE_TIMEFRAME.csv[.gz], "
            "e.g. binance_BTC-USDT_1h.csv.gz, with columns timestamp,open,high,low,close,volume"
        )
    frame = pd.read_csv(path)
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}: candle files need {CANDLE_COLUMNS}")
    return f"{match['base']}/{match['quote']}", match["tf"], frame[CANDLE_COLUMNS]


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
        speed: Simulated milliseconds per real millisecond once started; 0 keeps the clock still.
        rate_limit: Klines requests allowed per second; beyond it the emulator answers 429 like
            Binance. None serves as fast as it can.
        timeout_s: How long a 'timeout' fault stalls before answering (longer than the client's timeout).
    """

    def __init__(
        self,
        candles: Mapping[tuple[str, str], pd.DataFrame],
        now_ms: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 0.0,
        rate_limit: float | None = None,
        timeout_s: float = 1.5,
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
            rows = _encode_rows(ts, values, tf)
            self._series[(_market_id(symbol), timeframe)] = _Series(ts, values, tf, rows)
            self._symbols[_market_id(symbol)] = symbol
            if len(ts):
                default_now = max(default_now, int(ts[-1]) + tf // 2)
        self._lock = threading.Lock()
        self._now_ms = int(now_ms) if now_ms is not None else (default_now or int(time.time() * 1000))
        self._speed, self._started_at = float(speed), time.monotonic()
        self._rate_limit, self._recent = rate_limit, deque[float]()
        self._timeout_s = timeout_s
        self._counts: Counter[str] = Counter()
        self._by_symbol: Counter[str] = Counter()
        self._failures: dict[str, deque[str]] = {}
        self._chaos: tuple[float, tuple[str, ...], random.Random] | None = None
        self._rng = random.Random(0)
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- clock, counters, fault hooks -------------------------------------------------------

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], **kwargs: Any) -> ExchangeEmulator:
        """Replay candle files named like ../shared/data's (``binance_BTC-USDT_1h.csv.gz``)."""
        candles = {}
        for path in paths:
            symbol, timeframe, frame = load_candle_file(path)
            candles[(symbol, timeframe)] = frame
        if not candles:
            raise ValueError("no candle files given: pass paths like ../shared/data/binance/binance_BTC-USDT_1h.csv.gz")
        return cls(candles, **kwargs)

    @property
    def now_ms(self) -> int:
        """The simulated exchange time (ms); only candles opened at or before it are served."""
        with self._lock:
            return self._clock()

    @now_ms.setter
    def now_ms(self, value: int) -> None:
        with self._lock:
            self._now_ms, self._started_at = int(value), time.monotonic()

    def advance(self, ms: int) -> int:
        """Move the simulated clock forward by ``ms``, so the forming candle closes and new ones appear."""
        with self._lock:
            self._now_ms = self._clock() + int(ms)
            self._started_at = time.monotonic()
            return self._now_ms

    def _clock(self) -> int:
        return self._now_ms + int((time.monotonic() - self._started_at) * 1000 * self._speed)

    @property
    def requests_by_symbol(self) -> Counter[str]:
        """Klines requests received so far, by unified symbol (faulted ones included)."""
        with self._lock:
            return Counter(self._by_symbol)

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
        self.inject(str(int(status)), n, path)

    def inject(self, fault: str, n: int = 1, path: str = KLINES_PATH) -> None:
        """Apply ``fault`` (one of FAULTS, or any HTTP status) to the next ``n`` requests to ``path``.

        timeout: answer only after ``timeout_s``; truncate: a third of the page; duplicate: repeat
        candles; shuffle: candles out of order; malformed: one candle with NaN, a negative price or
        high < low; forming: append the forming candle, whatever the request's range.
        """
        if fault not in FAULTS and not fault.isdigit():
            raise ValueError(f"unknown fault {fault!r}: use one of {', '.join(FAULTS)} or an HTTP status")
        with self._lock:
            self._failures.setdefault(path, deque()).extend([fault] * int(n))

    def chaos(self, rate: float, faults: Iterable[str] = FAULTS, seed: int = 0) -> None:
        """From now on, each klines request gets a random fault from ``faults`` with probability ``rate``."""
        kinds = tuple(faults)
        unknown = [f for f in kinds if f not in FAULTS]
        if unknown or not 0 <= rate <= 1:
            raise ValueError(f"chaos needs 0 <= rate <= 1 and faults from {FAULTS}, got {rate}, {unknown}")
        with self._lock:
            self._chaos = (rate, kinds, random.Random(seed)) if rate > 0 and kinds else None

    @property
    def series(self) -> list[tuple[str, str]]:
        """The served (unified symbol, timeframe) pairs."""
        return list(self._frames)

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
        params = {k: v[-1] for k, v in parse_qs(split.query).items()}
        with self._lock:
            self._counts[path] += 1
            if path == KLINES_PATH:
                self._by_symbol[self._symbols.get(params.get("symbol", ""), "?")] += 1
            fault = self._next_fault(path)
            now = self._clock()
        if fault == "timeout":
            time.sleep(self._timeout_s)
        elif fault is not None and fault not in PAGE_FAULTS:
            status = int(fault)
            if status in _FAILURE_JSON:
                self._send(req, status, json.dumps(_FAILURE_JSON[status]).encode(), {"Retry-After": "1"})
            else:
                self._send(req, status, _HTML_503, content_type="text/html")
            return
        try:
            if method != "GET":
                raise _ApiError(404, -1, f"not emulated: {method} {path}")
            if path == "/api/v3/ping":
                payload = b"{}"
            elif path == "/api/v3/time":
                payload = json.dumps({"serverTime": now}).encode()
            elif path == "/api/v3/exchangeInfo":
                payload = json.dumps(self._exchange_info(now), separators=(",", ":")).encode()
            elif path == KLINES_PATH:
                payload = self._klines(params, now, fault).encode()
            else:
                raise _ApiError(404, -1, f"not emulated: {path}")
        except _ApiError as err:
            self._send(req, err.status, json.dumps({"code": err.code, "msg": err.msg}).encode())
            return
        try:
            self._send(req, 200, payload)
        except (BrokenPipeError, ConnectionResetError):  # a timed-out client has gone
            pass

    def _next_fault(self, path: str) -> str | None:
        """The fault for this request (lock held): queued ones first, then chaos, then the rate limit."""
        queue = self._failures.get(path)
        if queue:
            return queue.popleft()
        if path == KLINES_PATH and self._chaos is not None:
            rate, kinds, rng = self._chaos
            if rng.random() < rate:
                return rng.choice(kinds)
        if path == KLINES_PATH and self._rate_limit is not None:
            t = time.monotonic()
            while self._recent and self._recent[0] <= t - 1.0:
                self._recent.popleft()
            if len(self._recent) >= self._rate_limit:
                return "429"
            self._recent.append(t)
        return None

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

    def _klines(self, params: dict[str, str], now: int, fault: str | None = None) -> str:
        """Binance semantics: rows with startTime <= open <= endTime, oldest first, at most limit.

        Without startTime the newest ``limit`` rows up to endTime (or now) are returned. The newest
        row at ``now`` is the forming candle, with partial values.
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
        rows = series.rows[lo:hi] if lo < hi else []
        forming = self._forming_index(series, now)
        if forming is not None and lo <= forming < hi:
            rows = [*rows[:-1], _encode(self._partial(series, forming, now))]
        if fault in PAGE_FAULTS and fault != "timeout":
            rows = self._alter(rows, series, fault, forming, now)
        return "[" + ",".join(rows) + "]"

    @staticmethod
    def _forming_index(series: _Series, now: int) -> int | None:
        i = int(np.searchsorted(series.ts, now, side="right")) - 1
        return i if i >= 0 and series.ts[i] + series.tf_ms > now else None

    @staticmethod
    def _partial(series: _Series, i: int, now: int) -> list[Any]:
        """The forming candle as the exchange shows it mid-way: close and volume so far, no wicks yet."""
        t = int(series.ts[i])
        o, _, _, c, v = series.values[i].tolist()
        f = max(0.0, min(1.0, (now - t) / series.tf_ms))
        c_now = o + (c - o) * f
        return _row(t, o, max(o, c_now), min(o, c_now), c_now, v * f, series.tf_ms)

    def _alter(self, rows: list[str], series: _Series, fault: str, forming: int | None, now: int) -> list[str]:
        """A page with ``fault`` applied; the true candles stay recoverable by a refetch."""
        rng = self._rng
        if fault == "forming" and forming is not None:
            return [*rows, _encode(self._partial(series, forming, now))]
        if not rows:
            return rows
        if fault == "truncate":
            return rows[: max(1, len(rows) // 3)]
        if fault == "duplicate":
            picks = sorted(rng.sample(range(len(rows)), k=min(3, len(rows))))
            return rows + [rows[i] for i in picks]
        if fault == "shuffle":
            return rng.sample(rows, k=len(rows))
        if fault == "malformed":
            i = rng.randrange(len(rows))
            row = json.loads(rows[i])
            kind = rng.choice(("nan", "negative", "inverted"))
            if kind == "nan":
                row[4] = "NaN"
            elif kind == "negative":
                row[3] = "-" + row[3]
            else:
                row[2], row[3] = row[3], row[2]  # high < low
                if row[2] == row[3]:
                    row[3] = _num(float(row[3]) * 2 + 1)
            return [*rows[:i], _encode(row), *rows[i + 1 :]]
        return rows


def synthetic_emulator(
    symbols: Iterable[str],
    timeframe: str = "1h",
    start_ms: int = DEFAULT_START_MS,
    n: int = 2_000,
    seed: int = 0,
    now_ms: int | None = None,
    **kwargs: Any,
) -> ExchangeEmulator:
    """An (unstarted) emulator serving ``synthetic_candles`` for each symbol; use it with ``with``.

    ``kwargs`` go to ``ExchangeEmulator`` (port, speed, rate_limit, ...).
    """
    candles = {
        (symbol, timeframe): synthetic_candles(symbol, start_ms, n, timeframe=timeframe, seed=seed)
        for symbol in symbols
    }
    return ExchangeEmulator(candles, now_ms=now_ms, **kwargs)
