"""The walk-forward engine: every model on the same folds and the same windows, whatever the target.

For each fold a fresh model (a factory gives a new, unfitted one) goes through the target's fold
protocol: fit on the training range (early-stopping on its own block), derive its intervals or
Value-at-Risk on the calibration block, forecast the test windows. Metrics are reported per fold and
pooled over all test windows of all folds (each window on its own fold's scale, never averaged over
folds). Returns, volatility and any other target (candlecast.forecasting.targets) run through this
one loop; the sweep, the evaluation and the gate all score through it. Trading the forecasts is the
trading layer's (``candlecast trade backtest``): this engine scores forecasts, it simulates no strategy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.splits import Fold
from candlecast.forecasting.targets.base import BacktestResult, Target, Walk

log = logging.getLogger(__name__)


def backtest(
    target: Target,
    factories: dict[str, Callable[[], Forecaster]],
    series: list[SeriesArrays],
    folds: list[Fold],
    walk: Walk,
    on_fold: Callable[[str, int, dict[str, float]], None] | None = None,
) -> BacktestResult:
    """Score every model (a factory gives a fresh, unfitted one per fold) on the same folds and windows."""
    rows: list[dict] = []
    parts: dict[str, list] = {name: [] for name in factories}
    for i, fold in enumerate(folds):
        for name, factory in factories.items():
            f = target.run_fold(factory(), series, fold, walk)
            metrics = target.score(f, walk)
            metrics["fit_seconds"] = f.fit_seconds
            rows.append({"model": name, "fold": i, **metrics})
            parts[name].append(f)
            log.info("fold %d %s: %s (%.1f s)", i, name, target.progress(metrics), f.fit_seconds)
            if on_fold:
                on_fold(name, i, metrics)
    result = BacktestResult(target, pd.DataFrame(rows), pd.DataFrame(), parts)
    pooled = {name: result.pooled(name) for name in factories}
    summary = []
    for name, f in pooled.items():
        metrics = target.score(f, walk)
        metrics["fit_seconds"] = float(sum(p.fit_seconds for p in parts[name]))
        metrics.update(target.against(name, f, pooled, walk))
        summary.append({"model": name, **metrics})
    result.summary = pd.DataFrame(summary).set_index("model")
    target.per_fold_ratios(result, walk)
    return result


def markdown_table(summary: pd.DataFrame, columns: list[str]) -> str:
    """The summary as a GitHub markdown table (no extra dependency)."""
    cols = [c for c in columns if c in summary.columns]
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, row in summary.iterrows():
        lines.append(f"| {name} | " + " | ".join(_fmt(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    if not np.isfinite(value):
        return "-"
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.0f}"
