"""Binance's public spot REST API on the wire: kline rows, exchangeInfo, klines pages and page faults.

What the emulator answers, apart from how it serves: ``emulator.py`` owns the HTTP server, the
simulated clock and the fault queues, and asks this module for the bytes. Keeping the wire format
here means a change in what ccxt's binance parser expects is a change in one small module.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

KLINES_PATH = "/api/v3/klines"
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000

#: Faults ``inject`` and ``chaos`` understand; HTTP statuses answer an error, the rest alter a klines page.
PAGE_FAULTS = ("timeout", "truncate", "duplicate", "shuffle", "malformed", "forming")
STATUS_FAULTS = ("429", "418", "500", "503")
FAULTS = STATUS_FAULTS + PAGE_FAULTS

HTML_503 = (
    b"<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
    b"<center><h1>503 Service Temporarily Unavailable</h1></center></body></html>"
)
_FAILURE_JSON: dict[int, dict[str, Any]] = {
    418: {"code": -1003, "msg": "Way too many requests; IP banned until further notice."},
    429: {"code": -1003, "msg": "Too many requests; current limit of IP is 6000 weight per 1 MINUTE."},
    500: {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."},
}


@dataclass(frozen=True)
class WireSeries:
    """One served series as arrays, so a page is a searchsorted and a slice, not a frame filter."""

    ts: np.ndarray  # int64 candle open times, sorted
    values: np.ndarray  # float64, shape (n, 5): open, high, low, close, volume
    tf_ms: int
    rows: list[str]  # each candle's JSON row, encoded once: serving a page is then a join

    @classmethod
    def build(cls, ts: np.ndarray, values: np.ndarray, tf_ms: int) -> WireSeries:
        """Wrap one series, encoding every candle's JSON row once up front."""
        return cls(ts, values, tf_ms, encode_rows(ts, values, tf_ms))


class ApiError(Exception):
    """An error answer: HTTP status plus Binance's JSON error body."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg

    def body(self) -> bytes:
        """Binance's JSON error body, e.g. ``{"code": -1121, "msg": "Invalid symbol."}``."""
        return json.dumps({"code": self.code, "msg": self.msg}).encode()


def status_fault_answer(status: int) -> tuple[bytes, dict[str, str], str]:
    """(body, headers, content type) of a status fault.

    429 and 418 answer Binance's JSON rate-limit body, 500 its -1001 internal error, anything else an
    HTML page as a load balancer in front of the exchange would: ccxt maps each to a different error.
    """
    if status in _FAILURE_JSON:
        return json.dumps(_FAILURE_JSON[status]).encode(), {"Retry-After": "1"}, "application/json;charset=UTF-8"
    return HTML_503, {}, "text/html"


def num(x: float) -> str:
    """Format like Binance (a decimal string, never exponent notation) yet round-trip exactly."""
    text = repr(x)
    if "e" in text or "E" in text:
        text = np.format_float_positional(x, unique=True, trim="0")
    return text


def kline_row(t: int, o: float, h: float, low: float, c: float, v: float, tf: int) -> list[Any]:
    """One Binance kline: open time, OHLCV as decimal strings, close time, quote volume, trades, taker volumes."""
    quote = v * (o + h + low + c) / 4.0
    return [t, num(o), num(h), num(low), num(c), num(v), t + tf - 1, num(quote), int(quote // 1000) + 1,
            num(v / 2), num(quote / 2), "0"]  # fmt: skip


def encode(row: list[Any]) -> str:
    """Compact JSON of one kline row, as Binance sends it (no spaces)."""
    return json.dumps(row, separators=(",", ":"))


def encode_rows(ts: np.ndarray, values: np.ndarray, tf: int) -> list[str]:
    """``encode(kline_row(...))`` for every candle, column by column: 5x faster, so replaying years starts at once."""
    o, h, low, c, v = values.T
    quote = v * (o + h + low + c) / 4.0
    text = [[num(x) for x in col.tolist()] for col in (o, h, low, c, v, quote, v / 2, quote / 2)]
    trades = (quote // 1000 + 1).astype(np.int64).tolist()
    return [
        f'[{t},"{a}","{b}","{d}","{e}","{f}",{t + tf - 1},"{q}",{n},"{bv}","{bq}","0"]'
        for t, a, b, d, e, f, q, n, bv, bq in zip(ts.tolist(), *text[:6], trades, *text[6:], strict=True)
    ]


def market_id(symbol: str) -> str:
    """Binance's id for a unified spot symbol: 'BTC/USDT' -> 'BTCUSDT'."""
    return symbol.replace("/", "")


def symbol_info(symbol: str) -> dict[str, Any]:
    """The smallest exchangeInfo symbol entry ccxt's binance parser accepts (DEPENDENCIES.md section 6)."""
    base, quote = symbol.split("/")
    price = {"filterType": "PRICE_FILTER", "minPrice": "0.00000001", "maxPrice": "1000000.00000000",
             "tickSize": "0.00000001"}  # fmt: skip
    lot = {"filterType": "LOT_SIZE", "minQty": "0.00000001", "maxQty": "9000000.00000000", "stepSize": "0.00000001"}
    return {
        "symbol": market_id(symbol),
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
        "filters": [price, lot],
    }


def exchange_info(symbols: Iterable[str], now: int) -> bytes:
    """The exchangeInfo answer listing ``symbols`` (unified), as JSON bytes."""
    info = {
        "timezone": "UTC",
        "serverTime": now,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [symbol_info(symbol) for symbol in symbols],
    }
    return json.dumps(info, separators=(",", ":")).encode()


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    if name not in params:
        return None
    try:
        return int(params[name])
    except ValueError:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None


def _lookup(params: Mapping[str, str], served: Mapping[tuple[str, str], WireSeries]) -> WireSeries:
    """The series a klines request names, or Binance's error for what is missing or unknown."""
    market, interval = params.get("symbol"), params.get("interval")
    for name, value in (("symbol", market), ("interval", interval)):
        if not value:
            raise ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    if not any(m == market for m, _ in served):
        raise ApiError(400, -1121, "Invalid symbol.")
    series = served.get((str(market), str(interval)))
    if series is None:
        raise ApiError(400, -1120, "Invalid interval.")
    return series


def klines_page(
    params: Mapping[str, str],
    served: Mapping[tuple[str, str], WireSeries],
    now: int,
    fault: str | None = None,
    rng: random.Random | None = None,
) -> str:
    """Binance semantics: rows with startTime <= open <= endTime, oldest first, at most limit.

    ``served`` maps (market id, interval) to its series. Without startTime the newest ``limit`` rows
    up to endTime (or now) are returned. The newest row at ``now`` is the forming candle, with
    partial values. A page fault (see PAGE_FAULTS) alters the page, drawing from ``rng``.
    """
    series = _lookup(params, served)
    limit = _int_param(params, "limit")
    limit = DEFAULT_LIMIT if limit is None else min(max(limit, 1), MAX_LIMIT)
    start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
    last = now if end is None else min(end, now)
    hi = int(np.searchsorted(series.ts, last, side="right"))
    if start is None:
        lo = max(0, hi - limit)
    else:
        lo = int(np.searchsorted(series.ts, start, side="left"))
        hi = min(hi, lo + limit)
    rows = series.rows[lo:hi] if lo < hi else []
    forming = forming_index(series, now)
    if forming is not None and lo <= forming < hi:
        rows = [*rows[:-1], encode(partial_row(series, forming, now))]
    if fault in PAGE_FAULTS and fault != "timeout":
        rows = alter_page(rows, series, fault, forming, now, rng or random.Random(0))
    return "[" + ",".join(rows) + "]"


def forming_index(series: WireSeries, now: int) -> int | None:
    """The index of the candle still forming at ``now``, if the series has one."""
    i = int(np.searchsorted(series.ts, now, side="right")) - 1
    return i if i >= 0 and series.ts[i] + series.tf_ms > now else None


def partial_row(series: WireSeries, i: int, now: int) -> list[Any]:
    """The forming candle as the exchange shows it mid-way: close and volume so far, no wicks yet."""
    t = int(series.ts[i])
    o, _, _, c, v = series.values[i].tolist()
    f = max(0.0, min(1.0, (now - t) / series.tf_ms))
    c_now = o + (c - o) * f
    return kline_row(t, o, max(o, c_now), min(o, c_now), c_now, v * f, series.tf_ms)


def alter_page(
    rows: list[str], series: WireSeries, fault: str, forming: int | None, now: int, rng: random.Random
) -> list[str]:
    """A page with ``fault`` applied; the true candles stay recoverable by a refetch."""
    if fault == "forming" and forming is not None:
        return [*rows, encode(partial_row(series, forming, now))]
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
        return [*rows[:i], encode(_malformed(json.loads(rows[i]), rng)), *rows[i + 1 :]]
    return rows


def _malformed(row: list[Any], rng: random.Random) -> list[Any]:
    """One kline made impossible: a NaN close, a negative low, or high below low."""
    kind = rng.choice(("nan", "negative", "inverted"))
    if kind == "nan":
        row[4] = "NaN"
    elif kind == "negative":
        row[3] = "-" + row[3]
    else:
        row[2], row[3] = row[3], row[2]  # high < low
        if row[2] == row[3]:
            row[3] = num(float(row[3]) * 2 + 1)
    return row
