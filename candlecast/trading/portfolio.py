"""The portfolio view: weights across symbols, with the portfolio's predicted volatility and VaR.

The covariance is built from the risk forecasts (candlecast.trading.allocation): each symbol's
holding-period volatility from the frame (the risk @champion's when signals found one, else the
forecast interval's), with the Ledoit-Wolf shrunk correlation of the last ``window_days`` of
one-candle returns. Four methods, all within the policy's gross leverage:

* ``inverse_vol`` (naive risk parity): weight_i proportional to 1 / sigma_i, signed by the forecast's
  direction, so every symbol brings about the same risk whatever the forecast's size.
* ``mean_variance``: maximize w'mu - (risk_aversion / 2) w' S w with mu the forecast holding-period
  log returns; no budget constraint, so forecasts near zero give weights near zero (no edge, no
  position) rather than a forced full investment.
* ``min_variance`` and ``risk_parity``: long only and fully invested (times max_leverage, each capped
  at max_position), from the covariance alone; the forecast's direction plays no part.

Portfolio risk always uses that covariance: correlation, which the per-symbol view ignores, is what
makes five crypto positions one bet.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from candlecast.schema import timeframe_ms
from candlecast.trading.allocation import (
    forecast_covariance,
    min_variance_weights,
    risk_parity_weights,
    shrunk_correlation,
)
from candlecast.trading.config import PolicyConfig
from candlecast.trading.policy import DAY_MS, YEAR_MS, horizon_sigma

METHODS = ("inverse_vol", "mean_variance", "min_variance", "risk_parity")


def return_window(step_ms: int, window_days: float = 30.0) -> int:
    """One-candle returns the correlation uses: ``window_days`` of candles, at least 30."""
    return max(int(window_days * DAY_MS / step_ms), 30)


def recent_returns(candles: dict[str, pd.DataFrame], window: int) -> pd.DataFrame:
    """One-candle log returns of every symbol over the last ``window`` candles they have in common."""
    closes = pd.DataFrame({s: c.set_index("timestamp")["close"] for s, c in candles.items()}).dropna()
    returns = np.log(closes).diff().dropna().tail(window)
    if len(returns) < max(2 * len(candles), 30):
        raise ValueError(
            f"only {len(returns)} candles are common to {sorted(candles)}: the covariance needs at least "
            f"{max(2 * len(candles), 30)}; ingest more history or drop the symbol with the short record"
        )
    return returns


def forecast_risk_covariance(frame: pd.DataFrame, candles: dict[str, pd.DataFrame], window: int) -> pd.DataFrame:
    """The holding-period covariance: the frame's volatilities with the shrunk correlation of recent returns."""
    symbols = frame["symbol"].to_list()
    correlation = shrunk_correlation(recent_returns(candles, window)[symbols].to_numpy())
    cov = forecast_covariance(horizon_sigma(frame), correlation)
    return pd.DataFrame(cov, index=symbols, columns=symbols)


def inverse_vol_weights(frame: pd.DataFrame, policy: PolicyConfig) -> pd.Series:
    """Naive risk parity: weights proportional to 1 / sigma, signed by the forecast, summing to max_leverage."""
    inverse = 1.0 / horizon_sigma(frame)
    direction = np.sign(frame["forecast"].to_numpy("float64"))
    if not policy.allow_short:
        direction = np.maximum(direction, 0.0)
    weights = direction * inverse / inverse.sum() * policy.max_leverage
    return pd.Series(np.clip(weights, -policy.max_position, policy.max_position), index=frame["symbol"].to_numpy())


def mean_variance_weights(
    frame: pd.DataFrame, cov: pd.DataFrame, policy: PolicyConfig, risk_aversion: float = 1.0
) -> pd.Series:
    """Quadratic utility under the position, shorting and gross-leverage limits (PyPortfolioOpt, cvxpy)."""
    import cvxpy as cp
    from pypfopt import EfficientFrontier, objective_functions

    symbols = frame["symbol"].to_list()
    mu = pd.Series(frame["forecast"].to_numpy("float64"), index=symbols)
    lower = -policy.max_position if policy.allow_short else 0.0
    ef = EfficientFrontier(mu, cov.loc[symbols, symbols], weight_bounds=(lower, policy.max_position))
    ef.add_constraint(lambda w: cp.norm(w, 1) <= policy.max_leverage)
    ef.convex_objective(
        objective_functions.quadratic_utility,
        weights_sum_to_one=False,
        expected_returns=mu,
        cov_matrix=cov.loc[symbols, symbols],
        risk_aversion=risk_aversion,
    )
    return pd.Series(ef.weights, index=symbols).round(10)


def portfolio_view(
    frame: pd.DataFrame,
    candles: dict[str, pd.DataFrame],
    policy: PolicyConfig,
    risk_aversion: float = 1.0,
    window_days: float = 30.0,
    level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weights per symbol and method, and per method the expected return, volatility and one-day VaR."""
    horizon = int(frame["horizon"].iloc[0])
    step = timeframe_ms(str(frame["timeframe"].iloc[0]))
    cov = forecast_risk_covariance(frame, candles, return_window(step, window_days))
    symbols = frame["symbol"].to_numpy()
    budget = {
        name: pd.Series(np.minimum(fn(cov.to_numpy()) * policy.max_leverage, policy.max_position), index=symbols)
        for name, fn in (("min_variance", min_variance_weights), ("risk_parity", risk_parity_weights))
    }
    weights = pd.DataFrame(
        {
            "inverse_vol": inverse_vol_weights(frame, policy),
            "mean_variance": mean_variance_weights(frame, cov, policy, risk_aversion),
            **budget,
        }
    )
    weights.index.name = "symbol"
    mu = pd.Series(frame["forecast"].to_numpy("float64"), index=frame["symbol"].to_numpy())
    z = NormalDist().inv_cdf(level)
    rows = {}
    for method in METHODS:
        w = weights[method].to_numpy()
        var_h = float(w @ cov.loc[weights.index, weights.index].to_numpy() @ w)
        sigma_h = np.sqrt(max(var_h, 0.0))
        rows[method] = {
            "expected_return": float(w @ mu.loc[weights.index].to_numpy()),
            "volatility_annual": sigma_h * np.sqrt(YEAR_MS / (horizon * step)),
            "var_1d_95": z * sigma_h * np.sqrt(DAY_MS / (horizon * step)),
            "gross": float(np.abs(w).sum()),
            "net": float(w.sum()),
        }
    return weights, pd.DataFrame(rows).T.rename_axis("method")
