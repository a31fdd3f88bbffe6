"""Return forecasts on one fold: the H cumulative log returns with adaptive conformal intervals, next to naive.

For each fold a fresh model fits on the training range (early-stopping on its own block), calibrates
its interval on the calibration block, and forecasts the test windows, whose intervals then adapt as
outcomes arrive (candlecast.forecasting.calibration); the naive random walk is scored on exactly those
windows, each on its own fold's scale. The returns target (candlecast.forecasting.targets.returns)
hands these to the walk-forward engine (candlecast.forecasting.walkforward).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.calibration import Calibration, adapt
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.metrics import diebold_mariano, forecast_metrics, interval_metrics, naive_scales
from candlecast.forecasting.retrain import CUTOFF, Refit, forecast_test
from candlecast.forecasting.splits import Fold, origins
from candlecast.schema import Range

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
    "coverage_static",
    "width",
    "pinball",
    "dm_stat",
    "dm_pvalue",
]


@dataclass
class Forecasts:
    """One model's forecasts on one fold's test windows, pooled over series (in series, then time order)."""

    series: np.ndarray  # (N,) series name per window
    timestamps: np.ndarray  # (N,) window end (the forecast origin: open time of the last input candle), ms
    close: np.ndarray  # (N,) close at the origin
    y: np.ndarray  # (N, H) realised cumulative log returns
    point: np.ndarray  # (N, H)
    lower: np.ndarray  # (N, H) adaptive conformal interval
    upper: np.ndarray  # (N, H)
    static_lower: np.ndarray  # (N, H) the calibration block's split-conformal interval, never adapted
    static_upper: np.ndarray  # (N, H)
    scale_mae: np.ndarray  # (N, H) in-sample naive MAE per step of the window's fold (MASE denominator)
    scale_rmse: np.ndarray  # (N, H) in-sample naive RMSE per step (RMSSE denominator)
    calibration: Calibration | None = None  # the offsets tracked to the fold's last outcome
    fit_seconds: float = 0.0

    @classmethod
    def concat(cls, parts: list[Forecasts]) -> Forecasts:
        """Pool forecasts (folds or series) into one; calibration and fit time belong to one fold, so reset."""
        # Any: the fields are named in _ARRAYS (all arrays), which mypy cannot match to the signature
        arrays: dict[str, Any] = {k: np.concatenate([getattr(p, k) for p in parts]) for k in _ARRAYS}
        return cls(**arrays)

    def subset(self, mask: np.ndarray) -> Forecasts:
        """The windows ``mask`` selects or reorders (a boolean mask or integer indices), all arrays alike."""
        return Forecasts(*(getattr(self, k)[mask] for k in _ARRAYS))


_ARRAYS = (
    "series",
    "timestamps",
    "close",
    "y",
    "point",
    "lower",
    "upper",
    "static_lower",
    "static_upper",
    "scale_mae",
    "scale_rmse",
)


def run_fold(
    model: Forecaster,
    series: list[SeriesArrays],
    fold: Fold,
    interval: float,
    stride: int,
    step_ms: int,
    adaptive_rate: float = 0.0,
    refit: Refit = CUTOFF,
) -> Forecasts:
    """Fit, calibrate on the calibration block, forecast test with adaptive intervals: every model's protocol.

    The model cannot peek: ``fit`` gets the series cut at the end of the early-stopping block (whose
    last targets end inside the purge gap), and ``forecast`` gets inputs with every target hidden.
    The calibration block's residuals steered nothing before they set the interval. Then, unless
    ``refit`` is stale, the model is refit at the test start on every target known by then
    (candlecast.forecasting.retrain) and that refit forecasts the test block.
    """
    start = time.perf_counter()
    model.fit([s.until(fold.val.end) for s in series], fold)
    cal = [(s, origins(s, fold.cal, stride, step_ms)) for s in series]
    pc = [model.forecast(s.inputs_only(), rows) for s, rows in cal]
    bounds = _stack_bounds([b for _, b in pc])
    y_cal = np.concatenate([s.targets[rows] for s, rows in cal])
    calibration = Calibration.fit(y_cal, np.concatenate([p for p, _ in pc]), bounds, interval)
    scale_mae, scale_rmse = training_scales(series, fold.train)
    parts: list[Forecasts] = []
    raws: list[np.ndarray | None] = []
    test_rows = [origins(s, fold.test, stride, step_ms) for s in series]
    tested = forecast_test(model, series, test_rows, fold.test, step_ms, refit)
    for s, rows, (point, raw) in zip(series, test_rows, tested, strict=True):
        static_lower, static_upper = calibration.apply(point, raw)
        n = len(rows)
        parts.append(
            Forecasts(
                np.full(n, s.name),
                s.timestamps[rows],
                s.close[rows],
                s.targets[rows],
                point,
                static_lower,
                static_upper,
                static_lower,
                static_upper,
                np.tile(scale_mae, (n, 1)),
                np.tile(scale_rmse, (n, 1)),
            )
        )
        raws.append(raw)
    out = Forecasts.concat(parts)
    horizon = out.y.shape[1]
    out.lower, out.upper, out.calibration = adapt(
        calibration,
        out.y,
        out.point,
        _stack_bounds(raws),
        out.timestamps,
        known_after=horizon * step_ms,
        rate=adaptive_rate,
    )
    out.fit_seconds = time.perf_counter() - start
    return out


def score(f: Forecasts, interval: float, stride: int) -> dict[str, float]:
    """Every metric of one model's forecasts, with naive's on the same windows and the ratios."""
    if len(f.y) == 0:
        raise ValueError("no test windows to score: the test range holds no complete window")
    model = forecast_metrics(f.y, f.point, f.close, f.scale_mae, f.scale_rmse)
    naive = forecast_metrics(f.y, np.zeros_like(f.y), f.close, f.scale_mae, f.scale_rmse)
    out = dict(model)
    out.update(interval_metrics(f.y, f.point, f.lower, f.upper, interval))
    out["coverage_static"] = float(np.mean((f.y >= f.static_lower) & (f.y <= f.static_upper)))
    out["naive_rmse"], out["naive_mae"], out["naive_mase"] = naive["rmse"], naive["mae"], naive["mase"]
    out["rmse_ratio"] = model["rmse"] / naive["rmse"]
    out["mae_ratio"] = model["mae"] / naive["mae"]
    step_rmse = np.sqrt(np.mean((f.y - f.point) ** 2, axis=0) / np.mean(f.y**2, axis=0))
    out["rmse_ratio_first_step"], out["rmse_ratio_last_step"] = float(step_rmse[0]), float(step_rmse[-1])
    out["dm_stat"], out["dm_pvalue"] = compare(f.y - f.point, f.y, f.timestamps, stride)
    out["windows"] = float(len(f.y))
    return out


def compare(err_a: np.ndarray, err_b: np.ndarray, timestamps: np.ndarray, stride: int) -> tuple[float, float]:
    """Diebold-Mariano of forecast a against b on the same windows (one-sided: a is better)."""
    lag = int(np.ceil(err_a.shape[1] / stride)) - 1  # windows closer than H candles share targets
    return diebold_mariano(err_a, err_b, lag, timestamps)


def _stack_bounds(bounds: list[np.ndarray | None]) -> np.ndarray | None:
    """One model's raw quantile bounds pooled over series; None for a model without quantiles.

    A model has bounds for every series or for none: a mix would misalign the windows, so it raises.
    """
    present = [b for b in bounds if b is not None]
    if not present:
        return None
    if len(present) != len(bounds):
        raise ValueError(f"quantile bounds for {len(present)} of {len(bounds)} series: a model gives all or none")
    return np.concatenate(present)


def training_scales(series: list[SeriesArrays], train: Range) -> tuple[np.ndarray, np.ndarray]:
    """The MASE/RMSSE denominators per step: naive's in-sample errors on the training windows, pooled."""
    targets = np.concatenate([s.targets[s.sample_rows(train)] for s in series])
    return naive_scales(targets)
