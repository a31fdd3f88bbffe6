"""Figures a run logs to MLflow: forecast vs actual per series, with the adaptive interval."""

from __future__ import annotations

import mlflow
import numpy as np

from candlecast.forecasting.returns import Forecasts


def log_forecast_plots(f: Forecasts, interval: float, last: int = 400) -> list[str]:
    """One figure per series: one-step and last-step forecasts against what happened, on the last test windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for name in np.unique(f.series):
        mask = f.series == name
        y, p, lo, hi = f.y[mask], f.point[mask], f.lower[mask], f.upper[mask]
        n = min(len(y), last)
        fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
        for ax, k in zip(axes, [0, y.shape[1] - 1], strict=True):
            ax.plot(y[-n:, k], color="black", lw=0.8, label="actual")
            ax.plot(p[-n:, k], color="tab:blue", lw=0.8, label="forecast")
            covered = np.mean((y[:, k] >= lo[:, k]) & (y[:, k] <= hi[:, k]))
            label = f"{interval:.0%} interval (covered {covered:.0%})"
            ax.fill_between(np.arange(n), lo[-n:, k], hi[-n:, k], color="tab:blue", alpha=0.2, label=label)
            ax.axhline(0, color="grey", lw=0.5, ls="--")
            ax.set_ylabel(f"log return, step {k + 1}")
            ax.legend(loc="upper right", fontsize=8)
        axes[0].set_title(f"{name}: forecast vs actual on the last {n} test windows (naive forecasts 0)")
        axes[1].set_xlabel("test window (one per candle, oldest left)")
        path = f"plots/forecast_vs_actual_{name}.png"
        mlflow.log_figure(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths
