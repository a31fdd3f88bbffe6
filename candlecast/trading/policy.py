"""Sizing policies as plain functions: forecast row in, target exposure out.

A target exposure is a signed fraction of equity held in one symbol. It depends only on the forecast
and the policy, so it is computed once, vectorized, before the engine runs; what depends on the
account (the no-trade band against the current position, the drawdown stop) lives in the strategy.
The same functions size the live signals, so a backtest and today's decision cannot disagree.

Risk comes from a ``volatility`` column when the forecast source has one (a risk model's predicted
standard deviation of the holding-period log return); until then from the forecast interval,
read as normal quantiles: sigma = (upper - lower) / (2 z), z the normal quantile of (1 + coverage) / 2.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from candlecast.schema import timeframe_ms
from candlecast.trading.config import PolicyConfig

YEAR_MS = 365.25 * 86_400_000
DAY_MS = 86_400_000
_NORMAL = NormalDist()
_TINY = 1e-12


def z_of(coverage: float | np.ndarray) -> np.ndarray:
    """The standard normal quantile bounding a central interval of ``coverage``."""
    cov = np.asarray(coverage, dtype="float64")
    return np.vectorize(lambda c: _NORMAL.inv_cdf((1 + c) / 2))(cov)


def horizon_sigma(frame: pd.DataFrame) -> np.ndarray:
    """Predicted standard deviation of each row's holding-period log return."""
    if "volatility" in frame.columns:
        return frame["volatility"].to_numpy("float64")
    width = (frame["upper"] - frame["lower"]).to_numpy("float64")
    return np.maximum(width / (2 * z_of(frame["coverage"].to_numpy("float64"))), _TINY)


def annual_vol(sigma_h: np.ndarray, horizon: int, timeframe: str) -> np.ndarray:
    """A holding-period sigma as annualized volatility (square-root-of-time scaling)."""
    periods_per_year = YEAR_MS / (horizon * timeframe_ms(timeframe))
    return np.asarray(sigma_h) * np.sqrt(periods_per_year)


def per_symbol_cap(policy: PolicyConfig, n_symbols: int) -> float:
    """Each symbol's |exposure| cap: its equal share of the leverage budget, and the per-symbol limit.

    Equal shares keep the gross cap without the symbols knowing each other's positions.
    """
    return min(policy.max_position, policy.max_leverage / max(n_symbols, 1))


def target_exposures(frame: pd.DataFrame, policy: PolicyConfig, n_symbols: int) -> np.ndarray:
    """Target exposure for every forecast row (same order), before the no-trade band.

    sign: the cap in the forecast's direction. vol_target: target_vol / (n * predicted annual vol),
    so each symbol carries its share of the risk budget, capped. A zero forecast means flat; with
    ``allow_short`` off a negative forecast means flat too.
    """
    if frame.empty:
        return np.zeros(0)
    direction = np.sign(frame["forecast"].to_numpy("float64"))
    if not policy.allow_short:
        direction = np.maximum(direction, 0.0)
    cap = per_symbol_cap(policy, n_symbols)
    if policy.name == "sign":
        return direction * cap
    horizon = int(frame["horizon"].iloc[0])
    vol = annual_vol(horizon_sigma(frame), horizon, str(frame["timeframe"].iloc[0]))
    size = np.minimum(cap, policy.target_vol / (max(n_symbols, 1) * np.maximum(vol, _TINY)))
    return direction * size


def rebalance(exposure: float, current: float, band: float) -> float:
    """The exposure to hold: the wanted one, unless it differs from the current one by less than the band.

    A zero exposure (no view, or shorts off) always closes: the band saves costs on small resizes, it
    must not keep a position nobody forecasts any more.
    """
    if exposure == 0.0 and current != 0.0:
        return 0.0
    return current if abs(exposure - current) < band else exposure


def prob_positive(frame: pd.DataFrame) -> np.ndarray:
    """P(holding-period return > 0) from the point forecast and the interval bounds (as quantiles).

    Two normal halves glued at the point forecast (read as the median): the lower half passes through
    ``lower`` at (1 - coverage) / 2, the upper half through ``upper`` at (1 + coverage) / 2, so a skewed
    interval gives a skewed distribution and the three quantiles are reproduced exactly.
    """
    z = z_of(frame["coverage"].to_numpy("float64"))
    point = frame["forecast"].to_numpy("float64")
    s_low = np.maximum((point - frame["lower"].to_numpy("float64")) / z, _TINY)
    s_up = np.maximum((frame["upper"].to_numpy("float64") - point) / z, _TINY)
    scale = np.where(point >= 0, s_low, s_up)
    cdf_at_zero = np.vectorize(_NORMAL.cdf)(-point / scale)
    return 1.0 - cdf_at_zero


def one_day_var(frame: pd.DataFrame, exposure: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Parametric one-day Value-at-Risk of holding ``exposure``, as a fraction of equity (zero mean).

    The holding-period sigma scales to one day by the square root of time.
    """
    horizon = int(frame["horizon"].iloc[0]) if len(frame) else 1
    step = timeframe_ms(str(frame["timeframe"].iloc[0])) if len(frame) else DAY_MS
    sigma_day = horizon_sigma(frame) * np.sqrt(DAY_MS / (horizon * step))
    return np.abs(exposure) * _NORMAL.inv_cdf(level) * sigma_day


def action(target: float, previous: float, band: float) -> str:
    """A word for the change from the previous target: buy, sell or hold (inside the band)."""
    held = rebalance(target, previous, band)
    if held == previous:
        return "hold"
    return "buy" if held > previous else "sell"
