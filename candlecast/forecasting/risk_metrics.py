"""Losses and tests for risk forecasts: variance forecasts by QLIKE, Value-at-Risk by its hits.

QLIKE (Patton 2011) is the loss that ranks variance forecasts correctly even though realised variance
is only a noisy proxy of the true variance, and it punishes under-prediction (the costly error for
risk) more than over-prediction. Value-at-Risk is judged by its hit sequence: Kupiec's test of the
hit rate (unconditional coverage) and Christoffersen's test of independence (hits should not
cluster), plus the quantile (tick) loss.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def qlike(realised: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """QLIKE loss per window: rv/f - log(rv/f) - 1 (0 for a perfect forecast, never negative).

    NaN where the realised variance is zero: a window whose closes never moved (common at h = 1 on a
    coarse tick) gives no proxy of the variance, and QLIKE would call any positive forecast infinitely
    wrong. Every model skips the same windows, so comparisons stay on equal terms (use ``np.nanmean``).
    """
    positive = realised > 0
    ratio = np.where(positive, realised, 1.0) / forecast
    return np.where(positive, ratio - np.log(ratio) - 1.0, np.nan)


def mse_log(realised: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """Squared error of the log variance per window (NaN where the realised variance is zero, as in ``qlike``)."""
    positive = realised > 0
    return np.where(positive, (np.log(np.where(positive, realised, 1.0)) - np.log(forecast)) ** 2, np.nan)


def tick_loss(returns: np.ndarray, quantile: np.ndarray, level: float) -> float:
    """Mean quantile (pinball) loss of a ``level`` quantile forecast, e.g. level 0.01 for the 99% VaR."""
    diff = returns - quantile
    return float(np.mean(np.maximum(level * diff, (level - 1) * diff)))


def _loglik(hits: int, n: int, p: float) -> float:
    """The log of p^hits (1-p)^(n-hits), with 0 * log 0 = 0."""
    out = 0.0
    if hits:
        out += hits * np.log(p)
    if n - hits:
        out += (n - hits) * np.log1p(-p)
    return out


def kupiec(hits: np.ndarray, level: float) -> tuple[float, float]:
    """Kupiec's proportion-of-failures test: LR statistic and p-value of "the hit rate is ``level``"."""
    n, x = len(hits), int(np.sum(hits))
    if n == 0:
        return 0.0, 1.0
    lr = -2 * (_loglik(x, n, level) - _loglik(x, n, x / n))
    return float(lr), float(stats.chi2.sf(lr, 1))


def christoffersen(hits: np.ndarray) -> tuple[float, float]:
    """Christoffersen's independence test: LR statistic and p-value of "a hit today says nothing of tomorrow"."""
    h = np.asarray(hits, dtype=bool)
    prev, cur = h[:-1], h[1:]
    n00, n01 = int(np.sum(~prev & ~cur)), int(np.sum(~prev & cur))
    n10, n11 = int(np.sum(prev & ~cur)), int(np.sum(prev & cur))
    if n01 + n11 == 0 or n00 + n10 == 0:  # no hit, or nothing but hits: nothing to test
        return 0.0, 1.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    restricted = _loglik(n01 + n11, n00 + n01 + n10 + n11, pi)
    free = _loglik(n01, n00 + n01, pi01) + _loglik(n11, n10 + n11, pi11)
    lr = -2 * (restricted - free)
    return float(lr), float(stats.chi2.sf(lr, 1))


def var_report(returns: np.ndarray, var_quantile: np.ndarray, level: float, prefix: str) -> dict[str, float]:
    """Hit rate, Kupiec and Christoffersen p-values and tick loss of a Value-at-Risk series.

    ``var_quantile`` is the ``level`` quantile of the return (a negative number for a loss), so a
    hit is a return below it. The windows must not overlap (one every horizon), or hits cluster by
    construction and the independence test means nothing.
    """
    hits = returns < var_quantile
    return {
        f"{prefix}_hit_rate": float(np.mean(hits)) if len(hits) else float("nan"),
        f"{prefix}_kupiec_p": kupiec(hits, level)[1],
        f"{prefix}_christoffersen_p": christoffersen(hits)[1],
        f"{prefix}_tick_loss": tick_loss(returns, var_quantile, level) if len(hits) else float("nan"),
        f"{prefix}_windows": float(len(hits)),
    }


def confidence_set(
    losses: dict[str, np.ndarray], block_size: int, size: float = 0.10, reps: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Hansen's model confidence set on per-window losses: each model's MCS p-value (in the set when >= ``size``).

    ``losses`` maps a model to its loss per window, all on the same windows; a window any model lacks
    (NaN, e.g. QLIKE without a variance proxy) is left out for all. Losses of overlapping or clustered
    windows are autocorrelated, so the bootstrap resamples blocks (stationary bootstrap, mean length
    ``block_size``); the seed is fixed so a table regenerates to the same set. ``arch.bootstrap.MCS``,
    range statistic with Hansen's elimination rule.
    """
    import pandas as pd
    from arch.bootstrap import MCS

    frame = pd.DataFrame(losses)
    if frame.shape[1] < 2:
        raise ValueError(f"a confidence set needs at least two models' losses, got {list(frame.columns)}")
    frame = frame.dropna()
    if len(frame) < 2 * block_size:
        raise ValueError(f"{len(frame)} windows with every model's loss: too few for blocks of {block_size}")
    mcs = MCS(frame, size=size, reps=reps, block_size=block_size, method="R", bootstrap="stationary", seed=seed)
    mcs.compute()
    return {str(name): float(p) for name, p in mcs.pvalues["Pvalue"].items()}
