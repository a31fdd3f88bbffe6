"""The candle frame shape and series identity shared by every stage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CANDLE_COLUMNS: list[str] = ["timestamp", "open", "high", "low", "close", "volume"]
PRICE_COLUMNS: list[str] = ["open", "high", "low", "close"]

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def timeframe_ms(timeframe: str) -> int:
    """Milliseconds in one candle of a ccxt timeframe string such as '1m', '4h' or '1d'."""
    try:
        count, unit = int(timeframe[:-1]), timeframe[-1]
        if count <= 0:
            raise ValueError
        return count * _UNIT_MS[unit]
    except (ValueError, KeyError, IndexError):
        raise ValueError(
            f"unknown timeframe {timeframe!r}: use a ccxt timeframe such as '1m', '5m', '1h', '4h' or '1d'"
        ) from None


@dataclass(frozen=True, order=True)
class SeriesKey:
    """One candle series: exchange id (ccxt), unified symbol and timeframe."""

    exchange: str
    symbol: str
    timeframe: str

    @classmethod
    def parse(cls, text: str) -> SeriesKey:
        """Parse 'binance:BTC/USDT:1h'."""
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"bad series {text!r}: write it as EXCHANGE:SYMBOL:TIMEFRAME, e.g. binance:BTC/USDT:1h")
        timeframe_ms(parts[2])
        return cls(*parts)

    @property
    def slug(self) -> str:
        """A filesystem- and MLflow-safe name, e.g. 'binance_BTC-USDT_1h'."""
        return f"{self.exchange}_{self.symbol.replace('/', '-')}_{self.timeframe}"

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}:{self.timeframe}"


@dataclass(frozen=True)
class Range:
    """An inclusive range of sample times (ms): the unit every split, fold and scaler speaks."""

    start: int  # inclusive sample timestamp, ms
    end: int  # inclusive sample timestamp, ms

    def mask(self, timestamps: np.ndarray) -> np.ndarray:
        """Which ``timestamps`` fall inside the range, both ends included."""
        return (timestamps >= self.start) & (timestamps <= self.end)
