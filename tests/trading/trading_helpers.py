"""Candles and forecast frames for the trading tests: real Binance pairs when present, seeded synthetic always."""

from __future__ import annotations

import numpy as np
import pandas as pd

from candlecast.devtools.synthetic import synthetic_candles
from candlecast.trading.config import TradingConfig

HOUR = 3_600_000
START = 1_717_200_000_000  # 2024-06-01 00:00 UTC

#: No fees, no slippage, no band, no stop: what a look-ahead test needs to see the signal alone.
FRICTIONLESS = {
    "policy": {"name": "sign", "no_trade_band": 0.0, "max_drawdown": None},
    "execution": {"taker_fee_bps": 0.0, "maker_fee_bps": 0.0, "slippage_bps": 0.0},
}


def frictionless(**execution) -> TradingConfig:
    raw = {"policy": dict(FRICTIONLESS["policy"]), "execution": {**FRICTIONLESS["execution"], **execution}}
    return TradingConfig.parse(raw)


def real_candles(shared_data, base: str, n: int) -> pd.DataFrame:
    frame = pd.read_csv(shared_data / "binance" / f"binance_{base}-USDT_1h.csv.gz")
    return frame.iloc[-n:].reset_index(drop=True)


def synthetic_pair(n: int = 1200, seed: int = 5) -> dict[str, pd.DataFrame]:
    return {s: synthetic_candles(s, START, n, seed=seed) for s in ("BTC/USDT", "ETH/USDT")}


def forecast_frame(
    candles: dict[str, pd.DataFrame],
    values: dict[str, np.ndarray] | None = None,
    horizon: int = 1,
    first: int = 50,
    last_gap: int = 10,
    width: float = 0.02,
    model: str = "test",
) -> pd.DataFrame:
    """One forecast per candle from ``first`` to ``len - last_gap``, stamped correctly (cutoff, its close)."""
    parts = []
    for symbol, c in candles.items():
        rows = slice(first, len(c) - last_gap)
        point = (values or {}).get(symbol, np.zeros(len(c)))[rows]
        parts.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "timeframe": "1h",
                    "cutoff": c["timestamp"].to_numpy("int64")[rows],
                    "horizon": horizon,
                    "close": c["close"].to_numpy("float64")[rows],
                    "forecast": point,
                    "lower": point - width,
                    "upper": point + width,
                    "coverage": 0.8,
                    "model": model,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def oracle(candles: dict[str, pd.DataFrame], horizon: int = 1, late: int = 0) -> dict[str, np.ndarray]:
    """The realized forward log return from each candle's close; ``late`` bars late if asked."""
    out = {}
    for symbol, c in candles.items():
        close = c["close"].to_numpy("float64")
        forward = np.full(len(close), np.nan)
        forward[:-horizon] = np.log(close[horizon:] / close[:-horizon])
        out[symbol] = np.concatenate([np.full(late, np.nan), forward[: len(forward) - late]]) if late else forward
    return out


def random_walk(symbol: str, n: int, seed: int, vol: float = 0.006, start_price: float = 100.0) -> pd.DataFrame:
    """Candles of a driftless i.i.d. random walk: no strategy can beat chance on it, by construction."""
    rng = np.random.default_rng(seed)
    close = start_price * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    open_ = np.concatenate([[start_price], close[:-1]])
    wick = np.abs(rng.normal(0.0, vol / 2, (2, n)))
    return pd.DataFrame(
        {
            "timestamp": START + np.arange(n, dtype="int64") * HOUR,
            "open": open_.round(4),
            "high": (np.maximum(open_, close) * (1 + wick[0])).round(4),
            "low": (np.minimum(open_, close) * (1 - wick[1])).round(4),
            "close": close.round(4),
            "volume": 1_000.0,
        }
    )
