"""The forecaster interface every model shares: fit on a fold, forecast windows, calibrate intervals.

Naive, statistical and neural models all implement ``WindowForecaster``, so the walk-forward
engine (candlecast.backtest) scores any of them on the same folds and windows: the sweep, the
evaluation and the promotion gate all re-score through it. Forecasts are H cumulative log
returns from the close of a window's last candle; intervals are conformal: calibrated on the
fold's validation windows, never on the windows they are scored on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from candlecast.datasets import SeriesArrays
from candlecast.splits import Fold


class WindowForecaster(ABC):
    """A model that fits on one fold and forecasts the windows ending at given rows."""

    name: str

    @abstractmethod
    def fit(self, series: list[SeriesArrays], fold: Fold) -> None:
        """Fit on ``fold.train`` only; ``fold.val`` may serve early stopping. Never read ``fold.test``."""

    @abstractmethod
    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Point forecasts (N, H) and, if the model has them, raw quantile bounds (N, H, 2)."""


@dataclass(frozen=True)
class Calibration:
    """Per-step conformal offsets: interval = [base_lower + lower, base_upper + upper].

    Point models use the residual quantiles of held-out windows around the point (split conformal);
    quantile models widen or narrow their own bounds by the conformity score (CQR).
    """

    interval: float
    lower: list[float]
    upper: list[float]

    @classmethod
    def fit(cls, y: np.ndarray, point: np.ndarray, bounds: np.ndarray | None, interval: float) -> Calibration:
        n = len(y)
        if n == 0:
            raise ValueError("no calibration windows: the validation range holds no complete window")
        if bounds is None:
            alpha = (1 - interval) / 2
            resid = y - point
            # finite-sample correction: the ceil((n+1)(1-a))/n empirical quantile
            hi = min(1.0, np.ceil((n + 1) * (1 - alpha)) / n)
            lo = max(0.0, np.floor((n + 1) * alpha) / n)
            return cls(interval, np.quantile(resid, lo, axis=0).tolist(), np.quantile(resid, hi, axis=0).tolist())
        score = np.maximum(bounds[..., 0] - y, y - bounds[..., 1])  # (N, H): > 0 outside the raw interval
        level = min(1.0, np.ceil((n + 1) * interval) / n)
        q = np.quantile(score, level, axis=0)
        return cls(interval, (-q).tolist(), q.tolist())

    def apply(self, point: np.ndarray, bounds: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = (point, point) if bounds is None else (bounds[..., 0], bounds[..., 1])
        lower, upper = lo + np.asarray(self.lower), hi + np.asarray(self.upper)
        return np.minimum(lower, point), np.maximum(upper, point)


def quantile_levels(interval: float) -> list[float]:
    """The two quantiles bounding a central interval, e.g. 0.8 -> [0.1, 0.9]."""
    return [round((1 - interval) / 2, 10), round((1 + interval) / 2, 10)]
