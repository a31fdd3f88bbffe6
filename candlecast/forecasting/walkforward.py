"""The walk-forward backtest: every model on the same folds and the same windows, next to naive.

For each fold a fresh model fits on the training range, calibrates its interval on the
validation windows and forecasts the test windows; the naive random walk is scored on exactly
those windows. Metrics are reported per fold and aggregated over all test windows of all folds
(not averaged over folds), and the trading backtest chains the folds in time order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from candlecast.config import BacktestConfig
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.calibration import Calibration
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.metrics import (
    diebold_mariano,
    forecast_metrics,
    interval_metrics,
    naive_scales,
    trading_backtest,
)
from candlecast.forecasting.splits import Fold
from candlecast.schema import Range

log = logging.getLogger(__name__)

#: The columns of the printed table, in order (the CSV holds every metric).
TABLE_COLUMNS = [
    "rmse_ratio",
    "rmse_ratio_first_step",
    "rmse_ratio_last_step",
    "mae_ratio",
    "rmse",
    "mase",
    "rmsse",
    "price_mape",
    "directional_accuracy",
    "coverage",
    "width",
    "pinball",
    "dm_stat",
    "dm_pvalue",
    "trade_return",
    "trade_sharpe",
    "trade_max_drawdown",
    "trade_turnover",
]


def origins(series: SeriesArrays, within: Range, stride: int, step_ms: int) -> np.ndarray:
    """Rows ending a complete window inside ``within``, one every ``stride`` candles from its start."""
    rows = series.sample_rows(within)
    return rows[((series.timestamps[rows] - within.start) // step_ms) % stride == 0]


@dataclass
class Forecasts:
    """One model's forecasts on one fold's test windows, pooled over series (in series, then time order)."""

    series: np.ndarray  # (N,) series name per window
    timestamps: np.ndarray  # (N,) window end (the forecast origin), ms
    close: np.ndarray  # (N,) close at the origin
    y: np.ndarray  # (N, H) realised cumulative log returns
    point: np.ndarray  # (N, H)
    lower: np.ndarray  # (N, H) calibrated interval
    upper: np.ndarray  # (N, H)
    calibration: Calibration | None = None
    fit_seconds: float = 0.0

    @classmethod
    def concat(cls, parts: list[Forecasts]) -> Forecasts:
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in _ARRAYS))


_ARRAYS = ("series", "timestamps", "close", "y", "point", "lower", "upper")


def run_fold(
    model: Forecaster, series: list[SeriesArrays], fold: Fold, interval: float, stride: int, step_ms: int
) -> Forecasts:
    """Fit on train, calibrate on validation, forecast test: the one protocol every model follows.

    The model cannot peek: ``fit`` gets the series cut at the end of the validation range (whose
    last targets end inside the purge gap), and ``forecast`` gets inputs with every target hidden.
    """
    start = time.perf_counter()
    model.fit([s.until(fold.val.end) for s in series], fold)
    val = [(s, origins(s, fold.val, stride, step_ms)) for s in series]
    pv = [model.forecast(s.inputs_only(), rows) for s, rows in val]
    y_val = np.concatenate([s.targets[rows] for s, rows in val])
    bounds = None if pv[0][1] is None else np.concatenate([b for _, b in pv])
    calibration = Calibration.fit(y_val, np.concatenate([p for p, _ in pv]), bounds, interval)
    parts = []
    for s in series:
        rows = origins(s, fold.test, stride, step_ms)
        point, raw = model.forecast(s.inputs_only(), rows)
        lower, upper = calibration.apply(point, raw)
        parts.append(
            Forecasts(
                np.full(len(rows), s.name), s.timestamps[rows], s.close[rows], s.targets[rows], point, lower, upper
            )
        )
    out = Forecasts.concat(parts)
    out.calibration, out.fit_seconds = calibration, time.perf_counter() - start
    return out


def score(
    f: Forecasts, scales: tuple[float, float], interval: float, cfg: BacktestConfig, step_ms: int
) -> dict[str, float]:
    """Every metric of one model's forecasts, with naive's on the same windows and the ratios."""
    if len(f.y) == 0:
        raise ValueError("no test windows to score: the test range holds no complete window")
    model = forecast_metrics(f.y, f.point, f.close, *scales)
    naive = forecast_metrics(f.y, np.zeros_like(f.y), f.close, *scales)
    out = dict(model)
    out.update(interval_metrics(f.y, f.point, f.lower, f.upper, interval))
    out["naive_rmse"], out["naive_mae"], out["naive_mase"] = naive["rmse"], naive["mae"], naive["mase"]
    out["rmse_ratio"] = model["rmse"] / naive["rmse"]
    out["mae_ratio"] = model["mae"] / naive["mae"]
    step_rmse = np.sqrt(np.mean((f.y - f.point) ** 2, axis=0) / np.mean(f.y**2, axis=0))
    out["rmse_ratio_first_step"], out["rmse_ratio_last_step"] = float(step_rmse[0]), float(step_rmse[-1])
    lag = int(np.ceil(f.y.shape[1] / cfg.stride)) - 1  # windows closer than H candles share targets
    out["dm_stat"], out["dm_pvalue"] = diebold_mariano(f.y - f.point, f.y, lag)
    trades = [
        trading_backtest(
            f.point[f.series == name],
            f.y[f.series == name],
            cfg.stride,
            step_ms,
            cfg.fee_bps,
            cfg.slippage_bps,
            cfg.allow_short,
        )
        for name in np.unique(f.series)
    ]
    out.update({k: float(np.mean([t[k] for t in trades])) for k in trades[0]})  # equal weight across series
    out["windows"] = float(len(f.y))
    return out


def training_scales(series: list[SeriesArrays], train: Range, step_ms: int) -> tuple[float, float]:
    """The MASE/RMSSE denominators: one-step naive errors on the training range, pooled over series."""
    steps = []
    for s in series:
        keep = train.mask(s.timestamps)
        ts, close = s.timestamps[keep], s.close[keep]
        steps.append(np.diff(np.log(close))[np.diff(ts) == step_ms])
    pooled = np.concatenate(steps)
    return naive_scales(np.concatenate([[0.0], np.cumsum(pooled)]), np.ones(len(pooled), dtype=bool))


@dataclass
class BacktestResult:
    per_fold: pd.DataFrame  # one row per (model, fold)
    summary: pd.DataFrame  # one row per model, over all folds' windows
    forecasts: dict[str, list[Forecasts]] = field(default_factory=dict)  # per model, one per fold

    def pooled(self, name: str) -> Forecasts:
        """One model's forecasts over every fold, per series in time order."""
        return _time_ordered(Forecasts.concat(self.forecasts[name]))


def backtest(
    factories: dict[str, Callable[[], Forecaster]],
    series: list[SeriesArrays],
    folds: list[Fold],
    interval: float,
    cfg: BacktestConfig,
    step_ms: int,
    on_fold: Callable[[str, int, dict[str, float]], None] | None = None,
) -> BacktestResult:
    """Score every model (a factory gives a fresh, unfitted one per fold) on the same folds and windows."""
    rows, parts = [], {name: [] for name in factories}
    for i, fold in enumerate(folds):
        scales = training_scales(series, fold.train, step_ms)
        for name, factory in factories.items():
            f = run_fold(factory(), series, fold, interval, cfg.stride, step_ms)
            metrics = score(f, scales, interval, cfg, step_ms)
            metrics["fit_seconds"] = f.fit_seconds
            rows.append({"model": name, "fold": i, **metrics})
            parts[name].append((f, scales))
            log.info("fold %d %s: rmse_ratio %.4f (%.1f s)", i, name, metrics["rmse_ratio"], f.fit_seconds)
            if on_fold:
                on_fold(name, i, metrics)
    summary = []
    result = BacktestResult(pd.DataFrame(rows), pd.DataFrame(), {n: [f for f, _ in fs] for n, fs in parts.items()})
    for name, fs in parts.items():
        scales = fs[-1][1]  # the latest training range's scale (largest training set when expanding)
        metrics = score(result.pooled(name), scales, interval, cfg, step_ms)
        metrics["fit_seconds"] = float(sum(f.fit_seconds for f, _ in fs))
        summary.append({"model": name, **metrics})
    result.summary = pd.DataFrame(summary).set_index("model")
    return result


def _time_ordered(f: Forecasts) -> Forecasts:
    order = np.lexsort((f.timestamps, f.series))
    return Forecasts(*(getattr(f, k)[order] for k in _ARRAYS))


def markdown_table(summary: pd.DataFrame, columns: list[str] | None = None) -> str:
    """The summary as a GitHub markdown table (no extra dependency)."""
    cols = [c for c in (columns or TABLE_COLUMNS) if c in summary.columns]
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, row in summary.iterrows():
        lines.append(f"| {name} | " + " | ".join(_fmt(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    if not np.isfinite(value):
        return "-"
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.0f}"
