"""Conformal prediction intervals: offsets fitted on held-out windows, applied to any model's forecasts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
