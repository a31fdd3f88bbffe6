"""Conformal prediction intervals: fitted on a held-out block, then adapted online as outcomes arrive.

A fold calibrates on its own calibration block (split conformal: residuals that never steered training
or model selection), then walks through the test windows in time order and tracks each bound's
quantile online (quantile tracking, the simplest adaptive conformal method; Gibbs & Candès 2021,
Angelopoulos et al. 2023): after every realised outcome a bound moves up by ``rate * width * (1 - tau)``
on a miss and down by ``rate * width * tau`` on a hit, so coverage recovers when volatility shifts. An
outcome is used only once every step of its window has closed, so no interval ever sees its own future;
and it is judged against the bound its window was issued with, not the bound current when it closes
(the feedback is h windows late, h x series when series share a tracker; judged against a bound that
has moved meanwhile, a crash's late misses barely move it and the issued bounds miss too often).
"""

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
        """Split-conformal offsets from held-out windows: y, point (N, H) and raw bounds (N, H, 2) or None."""
        n = len(y)
        if n == 0:
            raise ValueError("no calibration windows: the calibration block holds no complete window")
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
        """Calibrated (lower, upper) for forecasts (N, H); the interval always contains the point."""
        lo, hi = (point, point) if bounds is None else (bounds[..., 0], bounds[..., 1])
        lower, upper = lo + np.asarray(self.lower), hi + np.asarray(self.upper)
        return np.minimum(lower, point), np.maximum(upper, point)


def adapt(
    start: Calibration,
    y: np.ndarray,
    point: np.ndarray,
    bounds: np.ndarray | None,
    origins: np.ndarray,
    known_after: int,
    rate: float,
) -> tuple[np.ndarray, np.ndarray, Calibration]:
    """Intervals for windows in any order, each from the offsets tracked on outcomes known before it.

    Args:
        start: the split-conformal calibration of the fold (from its calibration block).
        y: realised cumulative returns (N, H).
        point: forecast cumulative returns (N, H).
        bounds: raw quantile bounds (N, H, 2), or None for a model without quantiles.
        origins: each window's origin (ms); windows are visited in origin order (stable), series pooled.
        known_after: ms after its origin when every step of a window has closed (horizon * candle).
        rate: step size as a share of the starting interval width; 0 keeps the split-conformal offsets.

    Returns:
        (lower, upper) in the input order, and the offsets tracked up to the last outcome.
    """
    tau_lo, tau_hi = (1 - start.interval) / 2, (1 + start.interval) / 2
    lower_off, upper_off = np.array(start.lower, dtype=float), np.array(start.upper, dtype=float)
    width = np.maximum(upper_off - lower_off, 1e-12)
    if bounds is not None:  # CQR offsets are symmetric: the raw interval's width sets the step
        width = np.maximum(np.mean(bounds[..., 1] - bounds[..., 0], axis=0) if len(y) else width, 1e-12)
    step = rate * width
    order = np.argsort(origins, kind="stable")
    lower, upper = np.empty_like(point), np.empty_like(point)
    base_lo = point if bounds is None else bounds[..., 0]
    base_hi = point if bounds is None else bounds[..., 1]
    issued_lo, issued_hi = np.empty_like(point), np.empty_like(point)  # the offsets each window got
    realised = 0  # windows (in ``order``) whose outcomes have been fed back
    for i in order:
        while realised < len(order) and origins[order[realised]] + known_after <= origins[i]:
            j = order[realised]
            if bounds is None:  # each bound tracks its own residual quantile
                resid = y[j] - point[j]
                upper_off += step * (tau_hi - (resid <= issued_hi[j]))
                lower_off += step * (tau_lo - (resid <= issued_lo[j]))
            else:  # one conformity score widens or narrows both bounds
                score = np.maximum(bounds[j, :, 0] - y[j], y[j] - bounds[j, :, 1])
                q = upper_off + step * (start.interval - (score <= issued_hi[j]))
                upper_off, lower_off = q, -q
            realised += 1
        issued_lo[i], issued_hi[i] = lower_off, upper_off
        lower[i] = np.minimum(base_lo[i] + lower_off, point[i])
        upper[i] = np.maximum(base_hi[i] + upper_off, point[i])
    return lower, upper, Calibration(start.interval, lower_off.tolist(), upper_off.tolist())
