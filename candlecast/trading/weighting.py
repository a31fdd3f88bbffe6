"""Portfolio weighting compared: equal, minimum-variance and risk-parity weights from forecast risk.

Rebalances fall every holding period on the cutoffs where the risk model forecast every symbol. At
each, the covariance is candlecast.trading.allocation's ``D R D``: the risk model's live variance per
symbol (made at or before the cutoff: risk_source.with_risk_volatility) and the shrunk correlation of
the ``window`` one-candle returns ending at the cutoff candle. Each method's weights, times the
policy's ``max_leverage``, are the targets of one run through the one NautilusTrader simulator, on the
same bars after the same fees, beside buy-and-hold (equal weight, never rebalanced).

Scores beside the usual table, for every run from the exposures it actually held (the weights drift
between rebalances, and the no-trade band skips small ones): the realized volatility over the forecast
one (the portfolio's ``sqrt(e' S e)`` per bar, as a root mean square); breaches of the one-bar VaR95,
``1.645 sqrt(e' S e / hold)``, with Kupiec's test; and a one-sided Diebold-Mariano test of the squared
daily returns against equal weight's (is the row's daily variance smaller?).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from candlecast.forecasting.metrics import dm_test
from candlecast.forecasting.risk_metrics import kupiec
from candlecast.trading.allocation import METHODS, WEIGHTS, forecast_covariance, shrunk_correlation
from candlecast.trading.backtest import TradeResult, summarize, validate_all
from candlecast.trading.config import TradingConfig
from candlecast.trading.engine import Market, run_engine
from candlecast.trading.forecasts import ForecastError
from candlecast.trading.policy import DAY_MS, YEAR_MS, per_symbol_cap
from candlecast.trading.risk_source import with_risk_volatility
from candlecast.trading.sizing import PERFORMANCE_COLUMNS
from candlecast.trading.sources import BUY_AND_HOLD

EQUAL = "equal"
_Z95 = NormalDist().inv_cdf(0.95)
#: The portfolio table's columns, with the labels the terminal and the markdown print.
PORTFOLIO_COLUMNS = {
    **PERFORMANCE_COLUMNS,
    "turnover": "turnover",
    "forecast_vol_ratio": "vol / forecast",
    "var95_breaches": "VaR95 breaches",
    "var95_kupiec_p": "Kupiec p",
    "sq_return_dm_p": "DM p",
}


@dataclass(frozen=True)
class Rebalances:
    """Every rebalance: the weights per method and the holding-period covariance they were built from."""

    symbols: list[str]
    cutoffs: np.ndarray  # int64 ms, the OPEN time of the last candle seen; usable at cutoff + one candle
    cov: np.ndarray  # (rebalance, symbol, symbol), holding-period log-return covariance
    weights: dict[str, np.ndarray]  # method -> (rebalance, symbol)
    hold: int


def rebalance_weights(
    risk: pd.DataFrame,
    candles: dict[str, pd.DataFrame],
    hold: int,
    step_ms: int,
    window: int,
    methods: tuple[str, ...] = METHODS,
) -> Rebalances:
    """Weights per method every ``hold`` candles, from the risk forecasts and the returns up to each cutoff."""
    unknown = sorted(set(methods) - set(WEIGHTS))
    if unknown:
        raise ForecastError(f"unknown portfolio methods {unknown}: choose from {', '.join(WEIGHTS)}")
    symbols = sorted(candles)
    closes = pd.DataFrame({s: candles[s].set_index("timestamp")["close"] for s in symbols}).dropna()
    returns = np.log(closes).diff().dropna()
    common = set(returns.index.astype("int64"))
    for s in symbols:
        common &= set(risk.loc[risk["symbol"] == s, "cutoff"].astype("int64"))
    history = np.searchsorted(returns.index.to_numpy("int64"), sorted(common), side="right")
    cutoffs = np.array(sorted(common), dtype="int64")[history >= window]
    if len(cutoffs) == 0:
        raise ForecastError(
            f"no cutoff has a risk forecast for every one of {symbols} after {window} common candles: "
            "run the risk model on the same candles, or shorten the correlation window"
        )
    cutoffs = cutoffs[((cutoffs - cutoffs[0]) // step_ms) % hold == 0]
    sigma = np.column_stack([_sigma(risk, s, cutoffs, closes[s], hold, step_ms) for s in symbols])
    ends = np.searchsorted(returns.index.to_numpy("int64"), cutoffs, side="right")
    values = returns.to_numpy("float64")
    cov = np.stack(
        [
            forecast_covariance(sig, shrunk_correlation(values[end - window : end]))
            for sig, end in zip(sigma, ends, strict=True)
        ]
    )
    weights = {m: np.stack([WEIGHTS[m](c) for c in cov]) for m in methods}
    return Rebalances(symbols, cutoffs, cov, weights, hold)


def _sigma(risk: pd.DataFrame, symbol: str, cutoffs: np.ndarray, close: pd.Series, hold: int, step: int) -> np.ndarray:
    """The holding-period volatility of ``symbol`` at each cutoff from its newest live risk forecast."""
    rows = pd.DataFrame(
        {"symbol": symbol, "cutoff": cutoffs, "horizon": hold, "close": close.reindex(cutoffs).to_numpy()}
    ).assign(forecast=0.0, lower=-1.0, upper=1.0, coverage=0.6827)
    sized, missing = with_risk_volatility(rows, risk[risk["symbol"] == symbol], step)
    if missing:
        raise ForecastError(
            f"{symbol} has no live risk forecast at {missing} rebalances: weight only where it forecast"
        )
    return sized["volatility"].to_numpy("float64")


def portfolio_frame(reb: Rebalances, candles: dict[str, pd.DataFrame], timeframe: str) -> pd.DataFrame:
    """The rebalances as a forecast frame (long, no view), so the usual checks find the window and bad stamps."""
    parts = [
        pd.DataFrame(
            {
                "symbol": s,
                "cutoff": reb.cutoffs,
                "close": candles[s].set_index("timestamp")["close"].reindex(reb.cutoffs).to_numpy(),
            }
        )
        for s in reb.symbols
    ]
    base = pd.concat(parts, ignore_index=True)
    return base.assign(timeframe=timeframe, horizon=reb.hold, forecast=1e-6, lower=-1.0, upper=1.0, coverage=0.6827)


def portfolio_backtest(market: Market, reb: Rebalances, cfg: TradingConfig) -> TradeResult:
    """Every method's weights and buy-and-hold through NautilusTrader over the same window; scored."""
    _, window = validate_all({"portfolio": portfolio_frame(reb, market.candles, market.timeframe)}, market, cfg)
    result = TradeResult(window, cfg)
    ts = np.repeat(reb.cutoffs + market.step, len(reb.symbols))
    for method, w in reb.weights.items():
        targets = pd.DataFrame(
            {
                "symbol": reb.symbols * len(reb.cutoffs),
                "ts": ts,
                "target": np.minimum(w * cfg.policy.max_leverage, cfg.policy.max_position).ravel(),
            }
        )
        run = run_engine(market, window, cfg, targets=targets, max_exposure=cfg.policy.max_position)
        result.runs[method] = summarize(method, run, market, cfg)
    run = run_engine(market, window, cfg, hold_target=per_symbol_cap(cfg.policy, len(reb.symbols)))
    result.runs[BUY_AND_HOLD] = summarize(BUY_AND_HOLD, run, market, cfg)
    _score(result, reb, market)
    return result


def _score(result: TradeResult, reb: Rebalances, market: Market) -> None:
    """Forecast volatility, VaR breaches and the DM test against equal weight, into each run's stats and equity."""
    daily = {}
    for name, run in result.runs.items():
        returns, var_bar = _held_variance(run.equity, reb, market)
        held = var_bar > 0
        hits = (returns[held] < -_Z95 * np.sqrt(var_bar[held])).astype(float)
        realized = returns[held].std(ddof=1) if held.sum() > 1 else np.nan
        run.stats["forecast_vol_ratio"] = float(realized / np.sqrt(var_bar[held].mean())) if held.any() else np.nan
        run.stats["var95_breaches"] = float(hits.mean()) if len(hits) else np.nan
        run.stats["var95_kupiec_p"] = kupiec(hits, 0.05)[1] if len(hits) else np.nan
        per_year = YEAR_MS / market.step
        run.equity["forecast_vol"] = np.append(np.where(held, np.sqrt(var_bar * per_year), np.nan), np.nan)
        value = run.equity["equity"]
        bar = value.pct_change().iloc[1:]
        daily[name] = (1 + bar).groupby(bar.index.to_numpy("int64") // DAY_MS).prod() - 1
    for name, run in result.runs.items():
        against = EQUAL in daily and name != EQUAL
        run.stats["sq_return_dm_p"] = _dm_p(daily[name] ** 2, daily[EQUAL] ** 2) if against else np.nan


def _held_variance(equity: pd.DataFrame, reb: Rebalances, market: Market) -> tuple[np.ndarray, np.ndarray]:
    """Each bar's equity return and the forecast variance of the exposure held into it (one-bar scale).

    The exposure held over the bar after time t is the position during it (after any fill at t, at the
    close or after the latency) at t's close, over t's equity; the covariance is the one live at t.
    """
    ts = equity.index.to_numpy("int64")
    value = equity["equity"].to_numpy("float64")
    step = market.step
    closes = (
        pd.DataFrame(
            {
                s: pd.Series(c["close"].to_numpy("float64"), index=c["timestamp"].to_numpy("int64") + step)
                for s, c in market.candles.items()
            }
        )
        .reindex(ts)
        .ffill()
    )
    exposure = (
        np.column_stack(
            [equity[f"position_{s}"].to_numpy("float64")[1:] * closes[s].to_numpy("float64")[:-1] for s in reb.symbols]
        )
        / np.where(value[:-1] > 0, value[:-1], np.nan)[:, None]
    )
    live = np.searchsorted(reb.cutoffs + step, ts[:-1], side="right") - 1
    fresh = (live >= 0) & (ts[:-1] - (reb.cutoffs[np.clip(live, 0, None)] + step) < reb.hold * step)
    cov = reb.cov[np.clip(live, 0, None)] / reb.hold
    var_bar = np.einsum("ti,tij,tj->t", np.nan_to_num(exposure), cov, np.nan_to_num(exposure))
    return value[1:] / value[:-1] - 1.0, np.where(fresh, var_bar, 0.0)


def _dm_p(loss: pd.Series, ref: pd.Series) -> float:
    joined = pd.concat([loss, ref], axis=1, join="inner").dropna()
    if len(joined) < 3:
        return np.nan
    return dm_test((joined.iloc[:, 0] - joined.iloc[:, 1]).to_numpy(), 0)[1]
