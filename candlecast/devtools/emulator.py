"""A local emulator of Binance's public spot REST API, for the real ccxt client.

Tests and the offline demo run the real ``ccxt.binance`` client (its URL building, parsing,
error mapping and pagination) against this server on 127.0.0.1, so nothing in the ingestion path
is mocked and nothing touches the network. Only the few endpoints that candle ingestion needs are
emulated; any other path answers 404 so a new dependency on the exchange shows up loudly.

It also pushes klines over Binance's websocket stream (``ws_url``, emulator_ws.py) for ccxt.pro's
``watch_ohlcv``, from the same clock and candles.

The emulator has a simulated clock: it serves only candles whose open time is <= ``now_ms``, and the
newest served candle is still forming (with partial values, as on the real exchange). The clock
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from candlecast.devtools.binance_wire import (
    FAULTS,
    KLINES_PATH,
    PAGE_FAULTS,
    STATUS_FAULTS,
    ApiError,
    WireSeries,
    exchange_info,
    klines_page,
    market_id,
    status_fault_answer,
)
from candlecast.devtools.emulator_ws import KlineStream
from candlecast.devtools.synthetic import DEFAULT_SIGNAL, Signal, synthetic_candles
from candlecast.schema import CANDLE_COLUMNS, timeframe_ms

__all__ = ["FAULTS", "KLINES_PATH", "PAGE_FAULTS", "STATUS_FAULTS", "ExchangeEmulator", "load_candle_file",
           "synthetic_emulator"]  # fmt: skip

#: 2024-01-01 00:00 UTC: a fixed origin keeps synthetic emulators reproducible.
DEFAULT_START_MS = 1_704_067_200_000
#: What a candle file is called: ``binance_BTC-USDT_1h.csv(.gz)``, as in ../shared/data.
_FILE_NAME = re.compile(r"^(?P<exchange>[a-z0-9]+)_(?P<base>[^_-]+)-(?P<quote>[^_-]+)_(?P<tf>\d+[mhdw])\.csv(\.gz)?$")


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


class ExchangeEmulator:
    """Serve candle frames over Binance's public spot REST API on a local port.

    Args:
        candles: Frames with CANDLE_COLUMNS keyed by (unified symbol, timeframe),
            e.g. ``{("BTC/USDT", "1h"): frame}``.
        now_ms: The simulated exchange clock. Defaults to the newest candle's open time plus half
            a timeframe, so that candle is still forming and a correct client must drop it.
        host: Interface to bind; keep it on loopback.
        port: 0 picks a free port (see ``url`` after ``start()``); the kline stream takes the next one.
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
        self._series: dict[tuple[str, str], WireSeries] = {}
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
            self._series[(market_id(symbol), timeframe)] = WireSeries.build(ts, values, tf)
            self._symbols[market_id(symbol)] = symbol
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
        self._stream: KlineStream | None = None

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
        host = self._server.server_address[0]
        if isinstance(host, bytes):  # typeshed allows bytes (other address families); AF_INET answers str
            host = host.decode()
        return f"http://{host}:{self._server.server_port}"

    @property
    def ws_url(self) -> str:
        """The kline websocket stream's base, e.g. 'ws://127.0.0.1:54322/stream/ws' (``urls['api']['ws']['spot']``)."""
        if self._stream is None:
            raise RuntimeError("the emulator is not started: call start() or use it as a context manager")
        return self._stream.url

    @property
    def stream_subscriptions(self) -> int:
        """Kline streams subscribed so far, each counted after its first push (a test waits on it to move the clock)."""
        return self._stream.subscribed if self._stream is not None else 0

    def drop_streams(self) -> int:
        """Close every websocket connection, as an exchange restart would; returns how many were open."""
        return self._stream.drop() if self._stream is not None else 0

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
        self._stream = KlineStream(self._series, lambda: self.now_ms, self._host, self._port and self._port + 1).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; shutdown() alone leaves clients hanging until timeout."""
        server, thread, stream = self._server, self._thread, self._stream
        self._server = self._thread = self._stream = None
        if server is None:
            return
        if stream is not None:
            stream.stop()
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
            body, headers, content_type = status_fault_answer(int(fault))
            self._send(req, int(fault), body, headers, content_type)
            return
        try:
            payload = self._answer(method, path, params, now, fault)
        except ApiError as err:
            self._send(req, err.status, err.body())
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

    def _answer(self, method: str, path: str, params: dict[str, str], now: int, fault: str | None) -> bytes:
        """The body of a successful answer; an ApiError for anything not emulated or malformed."""
        if method != "GET":
            raise ApiError(404, -1, f"not emulated: {method} {path}")
        if path == "/api/v3/ping":
            return b"{}"
        if path == "/api/v3/time":
            return json.dumps({"serverTime": now}).encode()
        if path == "/api/v3/exchangeInfo":
            return exchange_info(self._symbols.values(), now)
        if path == KLINES_PATH:
            return klines_page(params, self._series, now, fault, self._rng).encode()
        raise ApiError(404, -1, f"not emulated: {path}")


def synthetic_emulator(
    symbols: Iterable[str],
    timeframe: str = "1h",
    start_ms: int = DEFAULT_START_MS,
    n: int = 2_000,
    seed: int = 0,
    now_ms: int | None = None,
    signal: Signal = DEFAULT_SIGNAL,
    **kwargs: Any,
) -> ExchangeEmulator:
    """An (unstarted) emulator serving ``synthetic_candles`` for each symbol; use it with ``with``.

    ``signal`` sets how much of the returns a model can learn; ``kwargs`` go to ``ExchangeEmulator``
    (port, speed, rate_limit, ...).
    """
    candles = {
        (symbol, timeframe): synthetic_candles(symbol, start_ms, n, timeframe=timeframe, seed=seed, signal=signal)
        for symbol in symbols
    }
    return ExchangeEmulator(candles, now_ms=now_ms, **kwargs)
