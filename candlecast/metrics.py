"""Forecast metrics, always next to the naive random walk on the same windows.

Targets are cumulative log returns from the cutoff close (scale-free, so series pool fairly).
The naive random walk forecasts a zero return at every step: ``rmse_ratio < 1`` means the model
beats it. MASE divides MAE by the in-sample one-step naive MAE of the training range.
"""

from __future__ import annotations

import numpy as np


def forecast_metrics(y_true: np.ndarray, y_pred: np.ndarray, naive_scale: float) -> dict[str, float]:
    """Metrics of (N, H) cumulative log-return forecasts, averaged over windows and steps."""
    err = y_true - y_pred
    moved = y_true != 0
    hits = np.sign(y_pred[moved]) == np.sign(y_true[moved])
    mae = float(np.mean(np.abs(err)))
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mase": mae / naive_scale,
        "directional_accuracy": float(np.mean(hits)) if hits.size else float("nan"),
    }


def compare_with_naive(y_true: np.ndarray, y_pred: np.ndarray, naive_scale: float) -> dict[str, float]:
    """Model and naive metrics side by side, with the ratios the promotion gate reads."""
    model = forecast_metrics(y_true, y_pred, naive_scale)
    naive = forecast_metrics(y_true, np.zeros_like(y_true), naive_scale)
    out = {f"test_{k}": v for k, v in model.items()}
    out.update({f"naive_{k}": v for k, v in naive.items() if k != "directional_accuracy"})
    out["rmse_ratio"] = model["rmse"] / naive["rmse"]
    out["mae_ratio"] = model["mae"] / naive["mae"]
    out["test_windows"] = float(len(y_true))
    return out


def residual_quantiles(y_true: np.ndarray, y_pred: np.ndarray, interval: float) -> tuple[list[float], list[float]]:
    """Per-step residual quantiles on calibration windows: a split-conformal interval."""
    alpha = (1 - interval) / 2
    residuals = y_true - y_pred
    return (
        np.quantile(residuals, alpha, axis=0).tolist(),
        np.quantile(residuals, 1 - alpha, axis=0).tolist(),
    )


def coverage(y_true: np.ndarray, y_pred: np.ndarray, lower: list[float], upper: list[float]) -> float:
    inside = (y_true >= y_pred + np.asarray(lower)) & (y_true <= y_pred + np.asarray(upper))
    return float(np.mean(inside))
