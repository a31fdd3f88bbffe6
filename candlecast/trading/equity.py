"""Marked-to-market equity built from the fills and the candles, not from NautilusTrader's reports.

The margin account's balance is cash (realized PnL minus fees) and NETTING positions reports give
wrong per-position statistics, so equity is rebuilt here: cash from every fill's price, quantity and
fee, plus each open position valued at the last close. One point before the first bar (the starting
capital), one per bar close in the window, and one after the final flattening (cash only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from candlecast.trading.engine import Market
from candlecast.trading.forecasts import TradeWindow


def equity_curve(fills: pd.DataFrame, market: Market, window: TradeWindow, capital: float) -> pd.DataFrame:
    """Equity, cash, gross exposure and per-symbol position and exposure at every evaluation time (ms)."""
    step = market.step
    closes = _closes_on_grid(market, window)
    times = np.concatenate([[window.start - step], closes.index.to_numpy("int64"), [closes.index[-1] + step]])
    closes = closes.reindex(times).ffill().fillna(0.0)
    out = pd.DataFrame(index=pd.Index(times, name="ts"))
    value = np.zeros(len(times))
    gross = np.zeros(len(times))
    for symbol in market.candles:
        mine = fills[fills["symbol"] == symbol]
        # quantities have at most 9 decimals in NautilusTrader: rounding drops the float noise of the running sum
        position = np.round(_as_of(times, mine["ts"].to_numpy("float64"), mine["qty"].to_numpy("float64")), 9)
        notional = position * closes[symbol].to_numpy("float64")
        out[f"position_{symbol}"] = position
        value += notional
        gross += np.abs(notional)
        out[f"notional_{symbol}"] = notional
    spent = fills["qty"].to_numpy("float64") * fills["price"].to_numpy("float64") + fills["fee"].to_numpy("float64")
    cash = capital - _as_of(times, fills["ts"].to_numpy("float64"), spent)
    out["cash"] = cash
    out["equity"] = cash + value
    equity = out["equity"].to_numpy()
    out["gross_exposure"] = np.divide(gross, equity, out=np.zeros(len(times)), where=equity > 0)
    for symbol in market.candles:
        out[f"exposure_{symbol}"] = out.pop(f"notional_{symbol}") / out["equity"].where(out["equity"] > 0)
    return out


def _closes_on_grid(market: Market, window: TradeWindow) -> pd.DataFrame:
    """Each symbol's close by bar close time over the window (a missing candle keeps the last close)."""
    step = market.step
    columns = {}
    for symbol, candles in market.candles.items():
        close_ms = candles["timestamp"].to_numpy("int64") + step
        keep = (close_ms >= window.start - step) & (close_ms <= window.end)
        columns[symbol] = pd.Series(candles["close"].to_numpy("float64")[keep], index=close_ms[keep])
    frame = pd.DataFrame(columns).sort_index().ffill()
    return frame[frame.index >= window.start]


def _as_of(times: np.ndarray, at: np.ndarray, amounts: np.ndarray) -> np.ndarray:
    """The running sum of ``amounts`` over events at or before each time."""
    if len(at) == 0:
        return np.zeros(len(times))
    order = np.argsort(at, kind="stable")
    running = np.concatenate([[0.0], np.cumsum(amounts[order])])
    return running[np.searchsorted(at[order], times, side="right")]
