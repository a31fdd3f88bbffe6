"""Binance's spot kline websocket stream on 127.0.0.1, beside the REST emulator: same clock, same candles.

What ccxt.pro's binance ``watch_ohlcv`` speaks (ccxt 4.5.90, ``ccxt/pro/binance.py``): it connects to
``urls['api']['ws']['spot'] + '/<stream index>'``, sends ``{"method": "SUBSCRIBE", "params":
["btcusdt@kline_1m", ...], "id": n}``, expects ``{"result": null, "id": n}``, then parses each
``{"e": "kline", "E": ..., "s": "BTCUSDT", "k": {"t", "T", "s", "i", "o", "h", "l", "c", "v", "x", ...}}``.
It tells spot from futures by ``/stream`` in the URL, so ``ws_url`` ends in ``/stream/ws``.

Each connection is a thread that reads the emulator's clock every ``TICK_S``: when a candle has closed
it pushes that candle (``x`` true, the values REST serves for it) and then the newly forming one
(``x`` false, REST's partial values), so an accelerated clock or ``advance`` by several candles
pushes each closed candle in order. ``drop()`` closes every connection, as an exchange restart would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from candlecast.devtools.binance_wire import WireSeries, forming_index, partial_row

TICK_S = 0.02
MAX_PUSH = 1_000  # closed candles pushed at once after a long jump of the clock (REST serves the rest)


def kline_event(market: str, interval: str, row: list[Any], closed: bool, now: int) -> str:
    """One kline event as Binance sends it, from a klines row (``kline_row``'s layout)."""
    t, o, h, low, c, v, close_t, q, n, taker_v, taker_q, _ = row
    k = {"t": t, "T": close_t, "s": market, "i": interval, "f": 0, "L": 0, "o": o, "c": c, "h": h, "l": low,
         "v": v, "n": n, "x": closed, "q": q, "V": taker_v, "Q": taker_q, "B": "0"}  # fmt: skip
    return json.dumps({"e": "kline", "E": now, "s": market, "k": k}, separators=(",", ":"))


class KlineStream:
    """The websocket server: ``served`` maps (market id, interval) to its series, ``clock`` reads the exchange time."""

    def __init__(
        self, served: Mapping[tuple[str, str], WireSeries], clock: Callable[[], int], host: str, port: int = 0
    ) -> None:
        self._served, self._clock, self._host, self._port = served, clock, host, port
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[ServerConnection] = set()
        self._lock = threading.Lock()
        self.subscribed = 0  # streams subscribed so far, all connections together, each after its first push

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>/stream/ws``: what ``urls['api']['ws']['spot']`` is pointed at."""
        if self._server is None:
            raise RuntimeError("the kline stream is not started")
        return f"ws://{self._host}:{self._server.socket.getsockname()[1]}/stream/ws"

    def start(self) -> KlineStream:
        """Bind the port (0: a free one) and serve in a daemon thread."""
        self._server = serve(self._serve, self._host, self._port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="kline-stream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket."""
        server, self._server = self._server, None
        if server is None:
            return
        self.drop()
        server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def drop(self) -> int:
        """Close every open connection (clients see the stream end); returns how many were open.

        Not waiting for the closing handshakes: the caller may be the client's own event loop.
        """
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            threading.Thread(target=connection.close, args=(1001, "emulator dropped the stream"), daemon=True).start()
        return len(connections)

    def _serve(self, connection: ServerConnection) -> None:
        with self._lock:
            self._connections.add(connection)
        pushed: dict[tuple[str, str], int] = {}  # subscribed (market, interval) -> open time of the candle forming
        try:
            while True:
                try:
                    message = connection.recv(timeout=TICK_S)
                except TimeoutError:
                    message = None
                if message is not None:
                    self._subscribe(connection, message, pushed)
                for sub in list(pushed):
                    self._push(connection, sub, pushed)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._connections.discard(connection)

    def _subscribe(
        self, connection: ServerConnection, message: str | bytes, pushed: dict[tuple[str, str], int]
    ) -> None:
        request = json.loads(message)
        if request.get("method") != "SUBSCRIBE":
            connection.send(
                json.dumps({"error": {"code": 2, "msg": "only SUBSCRIBE is emulated"}, "id": request.get("id")})
            )
            return
        new = [(m.upper(), i) for m, _, i in (str(n).partition("@kline_") for n in request.get("params", []))]
        unknown = [f"{m.lower()}@kline_{i}" for m, i in new if (m, i) not in self._served]
        if unknown:
            error = {"code": 2, "msg": f"Invalid request: unknown stream {unknown[0]}"}
            connection.send(json.dumps({"error": error, "id": request.get("id")}))
            return
        connection.send(json.dumps({"result": None, "id": request.get("id")}))
        for sub in new:
            pushed.setdefault(sub, -1)
            self._push(connection, sub, pushed)
        with self._lock:
            self.subscribed += len(new)

    def _push(self, connection: ServerConnection, sub: tuple[str, str], pushed: dict[tuple[str, str], int]) -> None:
        """Push what changed since the last push: each candle closed since (in order), then the forming one."""
        series, now = self._served[sub], self._clock()
        forming = forming_index(series, now)
        current = int(series.ts[forming]) if forming is not None else None
        last = pushed[sub]
        if current == last:
            return
        if last >= 0:
            lo = int(np.searchsorted(series.ts, last, side="left"))
            hi = forming if forming is not None else int(np.searchsorted(series.ts, now, side="right"))
            for i in range(max(lo, hi - MAX_PUSH), hi):
                connection.send(kline_event(sub[0], sub[1], json.loads(series.rows[i]), True, now))
        if forming is not None:
            connection.send(kline_event(sub[0], sub[1], partial_row(series, forming, now), False, now))
        pushed[sub] = current if current is not None else now
