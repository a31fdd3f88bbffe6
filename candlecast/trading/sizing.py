"""Sizing compared: one volatility-targeted long strategy, sized by each risk model's forecasts.

Every sized strategy holds the same long view on the same origins (one per holding period, where every
risk model has a forecast), so only the volatility differs. ``constant`` sizes with one volatility for
the whole window: the holding-period return's standard deviation over the candles before the window
(known when trading starts). All of them and buy-and-hold run through the one NautilusTrader simulator
(backtest.trade_backtest); this module only builds their frames and scores the equity they leave.

Scores beside the usual table: realized over target volatility; breaches of the portfolio's one-bar
VaR95, ``1.645 * sum_i |exposure_i| * sigma_i`` (sigma_i the live forecast per bar: the policy's own
reading, each symbol carrying an equal share of the target, i.e. perfect correlation), with Kupiec's
test; and the squared tracking error of each day's realized volatility (annualized from its bars)
against the target, with a one-sided Diebold-Mariano test against the reference model's (is the row's
smaller?).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from candlecast.forecasting.metrics import dm_test
from candlecast.forecasting.risk_metrics import kupiec
from candlecast.trading.backtest import TradeResult
from candlecast.trading.forecasts import ForecastError, live_mask
from candlecast.trading.policy import DAY_MS, YEAR_MS
from candlecast.trading.risk_source import with_risk_volatility
from candlecast.trading.sources import every_hold

CONSTANT = "constant"
_Z95 = NormalDist().inv_cdf(0.95)
#: The performance columns every comparison table opens with, and the labels they print under.
PERFORMANCE_COLUMNS = {
    "total_return": "return",
    "annual_volatility": "vol",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "max_drawdown": "max DD",
}
#: The sizing table's columns, with the labels the terminal and the markdown print.
SIZING_COLUMNS = {
    **PERFORMANCE_COLUMNS,
    "vol_ratio": "vol / target",
    "var95_breaches": "VaR95 breaches",
    "var95_kupiec_p": "Kupiec p",
    "turnover": "turnover",
    "tracking_mse": "tracking MSE",
    "tracking_dm_p": "DM p",
}


def sizing_frames(
    risk: dict[str, pd.DataFrame], candles: dict[str, pd.DataFrame], timeframe: str, hold: int, step_ms: int
) -> dict[str, pd.DataFrame]:
    """A long forecast frame per risk model (its volatility filled), and ``constant``, on common origins."""
    if not risk:
        raise ForecastError("no risk models to size with: name them in --sizing-from")
    parts = []
    for symbol, c in candles.items():
        common = set.intersection(*(set(r.loc[r["symbol"] == symbol, "cutoff"].astype("int64")) for r in risk.values()))
        close = c.set_index("timestamp")["close"]
        cutoffs = np.array(sorted(common), dtype="int64")
        parts.append(pd.DataFrame({"symbol": symbol, "cutoff": cutoffs, "close": close.reindex(cutoffs).to_numpy()}))
    base = pd.concat(parts, ignore_index=True).dropna(subset=["close"])
    if base.empty:
        raise ForecastError("the risk models share no forecast origin on these candles: run them on the same folds")
    base = every_hold(
        base.assign(timeframe=timeframe, horizon=hold, forecast=1e-6, lower=-1.0, upper=1.0, coverage=0.6827),
        hold,
        step_ms,
    )
    frames = {}
    for name, rows in risk.items():
        frame, missing = with_risk_volatility(base, rows, step_ms)
        if missing:
            raise ForecastError(f"{name} has no live forecast for {missing} origins: size only where it forecast")
        frames[name] = frame.assign(model=name)
    frames[CONSTANT] = base.assign(volatility=_constant_vol(base, candles, hold), model=CONSTANT)
    return frames


def _constant_vol(base: pd.DataFrame, candles: dict[str, pd.DataFrame], hold: int) -> np.ndarray:
    """Per row: the sd of the symbol's hold-candle log returns over the candles before its first origin."""
    vol = {}
    for symbol, c in candles.items():
        first = base.loc[base["symbol"] == symbol, "cutoff"].min()
        log_close = np.log(c.loc[c["timestamp"] <= first, "close"].to_numpy("float64"))
        if len(log_close) < 3:
            raise ForecastError(f"{symbol} has no candles before its first forecast: constant sizing needs some")
        vol[symbol] = float(np.std(np.diff(log_close), ddof=1) * np.sqrt(hold))
    return base["symbol"].map(vol).to_numpy("float64")


def score_sizing(result: TradeResult, frames: dict[str, pd.DataFrame], step_ms: int, reference: str) -> pd.DataFrame:
    """The sizing table: performance, volatility tracking and VaR breaches per strategy (rows as run)."""
    target = result.config.policy.target_vol
    errors = {name: _daily_tracking(run.equity, target, step_ms) for name, run in result.runs.items()}
    rows = {}
    for name, run in result.runs.items():
        stats = {k: run.stats.get(k, np.nan) for k in ("total_return", "annual_volatility", "sharpe", "sortino")}
        stats |= {k: run.stats.get(k, np.nan) for k in ("max_drawdown", "turnover")}
        stats["vol_ratio"] = stats["annual_volatility"] / target
        hits = _var_hits(run.equity, frames[name], step_ms) if name in frames else np.zeros(0)
        stats["var95_breaches"] = float(hits.mean()) if len(hits) else np.nan
        stats["var95_kupiec_p"] = kupiec(hits, 0.05)[1] if len(hits) else np.nan
        err = errors[name]
        stats["tracking_mse"] = float(err.mean()) if len(err) else np.nan
        stats["tracking_dm_p"] = _dm_p(err, errors.get(reference)) if name != reference else np.nan
        rows[name] = stats
    return pd.DataFrame(rows).T.rename_axis("strategy")


def _daily_tracking(equity: pd.DataFrame, target: float, step_ms: int) -> pd.Series:
    """Per UTC day: (realized annualized volatility of the bar returns - target)^2, indexed by the day."""
    value = equity["equity"].to_numpy("float64")
    returns = pd.Series(value[1:] / value[:-1] - 1.0, index=equity.index[1:].to_numpy("int64"))
    days = returns.groupby(returns.index // DAY_MS)
    full = days.count() >= max(2, int(0.9 * DAY_MS / step_ms))
    realized = days.std(ddof=1)[full] * np.sqrt(YEAR_MS / step_ms)
    return (realized - target) ** 2


def _dm_p(err: pd.Series, ref: pd.Series | None) -> float:
    if ref is None:
        return np.nan
    joined = pd.concat([err, ref], axis=1, join="inner").dropna()
    if len(joined) < 3:
        return np.nan
    return dm_test((joined.iloc[:, 0] - joined.iloc[:, 1]).to_numpy(), 0)[1]


def _var_hits(equity: pd.DataFrame, frame: pd.DataFrame, step_ms: int) -> np.ndarray:
    """Whether each bar's equity return fell below minus the one-bar VaR95 of the exposure held into it."""
    ts = equity.index.to_numpy("int64")
    value = equity["equity"].to_numpy("float64")
    var = np.zeros(len(ts))
    for symbol, rows in frame.groupby("symbol"):
        col = f"exposure_{symbol}"
        if col not in equity:
            continue
        usable = rows["cutoff"].to_numpy("int64") + step_ms
        hold = int(rows["horizon"].iloc[0])
        idx = np.clip(np.searchsorted(usable, ts, side="right") - 1, 0, None)
        sigma_bar = rows["volatility"].to_numpy("float64")[idx] / np.sqrt(hold)
        sigma_bar = np.where(live_mask(ts, usable, hold * step_ms), sigma_bar, 0.0)
        var += np.abs(equity[col].fillna(0.0).to_numpy("float64")) * sigma_bar
    held = var[:-1] > 0
    returns = value[1:] / value[:-1] - 1.0
    return (returns[held] < -_Z95 * var[:-1][held]).astype(float)
