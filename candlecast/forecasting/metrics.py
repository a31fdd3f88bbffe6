"""Forecast metrics, always next to the naive random walk on the same windows.

Targets are cumulative log returns from the cutoff close (scale-free, so series pool fairly);
price metrics turn them back into prices from that close. The naive random walk forecasts a zero
return at every step: ``rmse_ratio < 1`` means the model beats it. MASE and RMSSE divide each step's
error by the in-sample error of the naive forecast *at that step* (the k-step cumulative return on
the training range), so naive scores about 1.00 at every horizon. The Diebold-Mariano test asks
whether one forecast's squared error is really below another's, allowing for the overlap of
multi-step windows and for series observed at the same time. Trading the forecasts is the trading
layer's (``candlecast trade backtest``, NautilusTrader): one simulator, one set of execution rules.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def forecast_metrics(
    y: np.ndarray, p: np.ndarray, close: np.ndarray, scale_mae: np.ndarray, scale_rmse: np.ndarray
) -> dict[str, float]:
    """Accuracy of (N, H) cumulative log-return forecasts from windows whose last close is ``close``.

    ``scale_mae`` and ``scale_rmse`` (N, H) hold each window's in-sample naive error per step (the
    fold's training range), so windows of folds with different training ranges pool on their own scale.
    """
    err = y - p
    price_true = close[:, None] * np.exp(y)
    price_err = price_true - close[:, None] * np.exp(p)
    moved = y != 0
    hits = np.sign(p[moved]) == np.sign(y[moved])
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mase": float(np.mean(np.abs(err) / scale_mae)),
        "rmsse": float(np.sqrt(np.mean(err**2 / scale_rmse**2))),
        "price_mae": float(np.mean(np.abs(price_err))),
        "price_rmse": float(np.sqrt(np.mean(price_err**2))),
        "price_mape": float(np.mean(np.abs(price_err) / price_true)),
        "directional_accuracy": float(np.mean(hits)) if hits.size else float("nan"),
    }


def pinball(y: np.ndarray, q: np.ndarray, level: float) -> float:
    """Mean pinball (quantile) loss of ``q`` as the ``level`` quantile of ``y``."""
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


def diebold_mariano(
    err_a: np.ndarray, err_b: np.ndarray, lag: int, timestamps: np.ndarray | None = None
) -> tuple[float, float]:
    """DM statistic and one-sided p-value for "forecast a's squared error is lower than b's".

    One loss differential per window (the mean over its steps). Windows of several series at the same
    origin are averaged first (``timestamps``): BTC's and ETH's losses of the same hour are one piece
    of evidence, not two. Windows closer than the horizon share targets, so the differentials are
    autocorrelated up to ``lag``. The variance comes from batch means: the series is cut into
    consecutive blocks of ``2 * (lag + 1)`` windows, whose means are close to independent, and the
    statistic is referred to t(blocks - 1) (a fixed-b test: its size holds for the few effective
    observations that overlapping windows leave; tests/unit/test_diebold_mariano.py simulates it).
    With fewer than 10 blocks the truncated rectangular long-run variance with the
    Harvey-Leybourne-Newbold correction and a t(n - 1) reference is used instead. Negative statistics
    favour a.
    """
    return dm_test(np.mean(err_a**2, axis=1) - np.mean(err_b**2, axis=1), lag, timestamps)


def dm_test(d: np.ndarray, lag: int, timestamps: np.ndarray | None = None) -> tuple[float, float]:
    """The Diebold-Mariano test on loss differentials ``d`` (one per window; negative favours the first forecast).

    See ``diebold_mariano`` for the grouping by time and the variance.
    """
    if timestamps is not None and len(d):
        order = np.argsort(timestamps, kind="stable")
        _, first, counts = np.unique(timestamps[order], return_index=True, return_counts=True)
        d = np.add.reduceat(d[order], first) / counts
    n = len(d)
    if n < 3 or not np.any(d):
        return 0.0, 0.5
    block = 2 * (max(lag, 0) + 1)
    if n // block >= 10:
        means = d[: n // block * block].reshape(-1, block).mean(axis=1)
        spread = means.std(ddof=1)
        if spread <= 0:
            return 0.0, 0.5
        stat = means.mean() / (spread / np.sqrt(len(means)))
        return float(stat), float(stats.t.cdf(stat, df=len(means) - 1))
    return _hln(d, max(0, min(lag, n - 2)))


def _hln(d: np.ndarray, lag: int) -> tuple[float, float]:
    """DM with the rectangular long-run variance and the Harvey-Leybourne-Newbold correction."""
    n = len(d)
    dc = d - d.mean()
    gamma = np.array([np.dot(dc[k:], dc[: n - k]) / n for k in range(lag + 1)])
    var = gamma[0] + 2 * gamma[1:].sum()
    if var <= 0:  # the rectangular estimate can go negative: fall back to Bartlett weights
        var = gamma[0] + 2 * np.dot(1 - np.arange(1, lag + 1) / (lag + 1), gamma[1:])
    if var <= 0:
        return 0.0, 0.5
    h = lag + 1
    stat = d.mean() / np.sqrt(var / n) * np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return float(stat), float(stats.t.cdf(stat, df=n - 1))


def naive_scales(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-sample naive MAE and RMSE per step (the MASE and RMSSE denominators) from training targets (N, H).

    The naive forecast of the k-step cumulative return is 0, so its error is the return itself.
    """
    finite = np.isfinite(targets).all(axis=1)
    t = targets[finite]
    if len(t) == 0:
        raise ValueError("no complete training window to scale MASE by: the training range is too short")
    return np.mean(np.abs(t), axis=0), np.sqrt(np.mean(t**2, axis=0))
