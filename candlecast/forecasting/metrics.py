"""Forecast metrics, always next to the naive random walk on the same windows.

Targets are cumulative log returns from the cutoff close (scale-free, so series pool fairly);
price metrics turn them back into prices from that close. The naive random walk forecasts a zero
return at every step: ``rmse_ratio < 1`` means the model beats it. MASE and RMSSE divide by the
in-sample one-step naive error of the training range, as Hyndman defines them. The
Diebold-Mariano test asks whether the model's squared error is really below naive's, allowing
for the overlap of multi-step windows. The trading backtest trades the sign of the forecast.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

_YEAR_MS = 365.25 * 86_400_000


def forecast_metrics(
    y: np.ndarray, p: np.ndarray, close: np.ndarray, scale_mae: float, scale_rmse: float
) -> dict[str, float]:
    """Accuracy of (N, H) cumulative log-return forecasts from windows whose last close is ``close``."""
    err = y - p
    price_true = close[:, None] * np.exp(y)
    price_err = price_true - close[:, None] * np.exp(p)
    moved = y != 0
    hits = np.sign(p[moved]) == np.sign(y[moved])
    mae = float(np.mean(np.abs(err)))
    rmse = float(np.sqrt(np.mean(err**2)))
    return {
        "mae": mae,
        "rmse": rmse,
        "mase": mae / scale_mae,
        "rmsse": rmse / scale_rmse,
        "price_mae": float(np.mean(np.abs(price_err))),
        "price_rmse": float(np.sqrt(np.mean(price_err**2))),
        "price_mape": float(np.mean(np.abs(price_err) / price_true)),
        "directional_accuracy": float(np.mean(hits)) if hits.size else float("nan"),
    }


def pinball(y: np.ndarray, q: np.ndarray, level: float) -> float:
    diff = y - q
    return float(np.mean(np.maximum(level * diff, (level - 1) * diff)))


def interval_metrics(
    y: np.ndarray, point: np.ndarray, lower: np.ndarray, upper: np.ndarray, interval: float
) -> dict[str, float]:
    """Coverage and mean width of the interval, and the pinball loss of (lower, point as median, upper)."""
    alpha = (1 - interval) / 2
    loss = (pinball(y, lower, alpha) + pinball(y, point, 0.5) + pinball(y, upper, 1 - alpha)) / 3
    return {
        "coverage": float(np.mean((y >= lower) & (y <= upper))),
        "width": float(np.mean(upper - lower)),
        "pinball": loss,
    }


def diebold_mariano(err_model: np.ndarray, err_naive: np.ndarray, lag: int) -> tuple[float, float]:
    """DM statistic and one-sided p-value for "the model's squared error is lower than naive's".

    One loss differential per window (mean over its steps); Newey-West variance with ``lag``
    autocovariances (overlapping windows share targets); Harvey-Leybourne-Newbold small-sample
    correction and a t(n-1) reference. Negative statistics favour the model.
    """
    d = np.mean(err_model**2, axis=1) - np.mean(err_naive**2, axis=1)
    n = len(d)
    if n < 3 or not np.any(d):
        return 0.0, 0.5
    lag = min(lag, n - 2)
    dc = d - d.mean()
    var = np.dot(dc, dc) / n
    for k in range(1, lag + 1):
        var += 2 * (1 - k / (lag + 1)) * np.dot(dc[k:], dc[:-k]) / n
    if var <= 0:
        return 0.0, 0.5
    h = lag + 1
    stat = d.mean() / np.sqrt(var / n) * np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return float(stat), float(stats.t.cdf(stat, df=n - 1))


def trading_backtest(
    pred: np.ndarray,
    y: np.ndarray,
    stride: int,
    step_ms: int,
    fee_bps: float,
    slippage_bps: float,
    allow_short: bool = True,
) -> dict[str, float]:
    """Trade the forecast's sign at each origin, hold ``stride`` candles, pay costs on every position change.

    ``pred`` and ``y`` are (N, H) forecasts and outcomes at consecutive origins ``stride`` candles
    apart, in time order. Returns are log returns; Sharpe is annualised from the holding period.
    """
    step = min(stride, y.shape[1])  # decide on the forecast of the holding period's end
    position = np.sign(pred[:, step - 1])
    if not allow_short:
        position = np.maximum(position, 0.0)
    changes = np.abs(np.diff(np.concatenate([[0.0], position])))
    net = position * y[:, step - 1] - changes * (fee_bps + slippage_bps) / 1e4
    equity = np.cumsum(net)
    drawdown = float(np.max(np.maximum.accumulate(np.concatenate([[0.0], equity]))[1:] - equity)) if len(net) else 0.0
    std = float(np.std(net))
    periods = _YEAR_MS / (stride * step_ms)
    return {
        "trade_return": float(np.expm1(equity[-1])) if len(net) else 0.0,
        "trade_sharpe": float(np.mean(net) / std * np.sqrt(periods)) if std > 0 else 0.0,
        "trade_max_drawdown": float(-np.expm1(-drawdown)),
        "trade_turnover": float(np.mean(changes)) if len(net) else 0.0,
    }


def naive_scales(log_close: np.ndarray, contiguous: np.ndarray) -> tuple[float, float]:
    """In-sample one-step naive MAE and RMSE (the MASE and RMSSE denominators) of a training range."""
    steps = np.diff(log_close)[contiguous]
    steps = steps[np.isfinite(steps)]
    return float(np.mean(np.abs(steps))), float(np.sqrt(np.mean(steps**2)))
