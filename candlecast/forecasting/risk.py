"""Risk forecasts on the walk-forward engine: the variance of the next h candles, and Value-at-Risk from it.

The target is the realised variance of the next h candles (the sum of squared one-candle log returns,
computed from the same gap-aware cumulative-return targets the return models use, so it is NaN where
a candle is missing). Every model (the LSTM family and the classical baselines) forecasts it through
the same Forecaster interface on a *variance view* of the series. Value-at-Risk follows from the
variance forecast the same way for every model: the h-step return's alpha-quantile is
``q_alpha * sqrt(forecast)``, where ``q_alpha`` is the alpha-quantile of standardised returns on the
fold's calibration block, tracked online through the test block like the return intervals; per
series, so a model of many series (the pooled one) gets each coin's VaR exactly as a per-coin model does.
Folds, blocks and the no-peeking protocol are the engine's (candlecast.forecasting.walkforward); the
volatility target (candlecast.forecasting.targets.volatility) hands these to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.calibration import Calibration, adapt
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.metrics import dm_test
from candlecast.forecasting.retrain import CUTOFF, Refit, forecast_test
from candlecast.forecasting.risk_metrics import mse_log, qlike, var_report
from candlecast.forecasting.splits import Fold, origins

#: The columns of the printed risk table, in order (the CSV holds every metric).
RISK_TABLE_COLUMNS = [
    "qlike",
    "qlike_ratio_garch",
    "qlike_ratio_har",
    "dm_p_garch",
    "dm_p_har",
    "mse_log_var",
    "var95_hit_rate",
    "var95_kupiec_p",
    "var99_hit_rate",
    "var99_kupiec_p",
    "var99_christoffersen_p",
    "var99_tick_loss",
]

#: Value-at-Risk levels: the 95% and 99% VaR are the 5% and 1% quantiles of the h-step return.
VAR_LEVELS = {"var95": 0.05, "var99": 0.01}


def realised_variance(cumulative: np.ndarray) -> np.ndarray:
    """Sum of squared one-step log returns over the horizon, from cumulative returns (N, H); NaN if any is."""
    steps = np.diff(cumulative, axis=1, prepend=0.0)
    return np.sum(steps**2, axis=1)


def variance_view(s: SeriesArrays) -> SeriesArrays:
    """The same rows and inputs, with the realised variance of the next h candles as the one target."""
    view = SeriesArrays(s.name, s.timestamps, s.features, realised_variance(s.targets)[:, None], s.close, s.columns)
    view.valid_end = s.valid_end
    return view


@dataclass
class RiskForecasts:
    """One model's variance and VaR forecasts on one fold's test windows, series pooled."""

    series: np.ndarray  # (N,)
    timestamps: np.ndarray  # (N,) forecast origin, ms
    realised: np.ndarray  # (N,) realised variance of the next h candles
    forecast: np.ndarray  # (N,) forecast of it
    returns: np.ndarray  # (N,) the h-step cumulative log return
    var: dict[str, np.ndarray]  # level name -> (N,) forecast return quantile (negative: a loss)
    quantiles: dict[str, float] = field(default_factory=dict)  # tracked standardised quantile at the end
    fit_seconds: float = 0.0

    @classmethod
    def concat(cls, parts: list[RiskForecasts]) -> RiskForecasts:
        """Pool risk forecasts (folds or series) into one; the tracked quantiles and fit time belong to one fold."""
        cat = np.concatenate
        return cls(
            cat([p.series for p in parts]),
            cat([p.timestamps for p in parts]),
            cat([p.realised for p in parts]),
            cat([p.forecast for p in parts]),
            cat([p.returns for p in parts]),
            {k: cat([p.var[k] for p in parts]) for k in VAR_LEVELS},
        )

    def subset(self, mask: np.ndarray) -> RiskForecasts:
        """The windows ``mask`` selects or reorders; the tracked quantiles and fit time belong to one fold."""
        return RiskForecasts(
            self.series[mask],
            self.timestamps[mask],
            self.realised[mask],
            self.forecast[mask],
            self.returns[mask],
            {k: v[mask] for k, v in self.var.items()},
        )


def run_risk_fold(
    model: Forecaster,
    series: list[SeriesArrays],
    fold: Fold,
    stride: int,
    step_ms: int,
    adaptive_rate: float = 0.0,
    refit: Refit = CUTOFF,
) -> RiskForecasts:
    """Fit on train (early-stop on its block), calibrate VaR on the calibration block, forecast test.

    Unless ``refit`` is stale the test block is forecast by the model refit at its start on every
    realised variance known by then (candlecast.forecasting.retrain); the VaR quantile still comes
    from the calibration block's standardised returns under the model fitted before it, each series' own.
    """
    start = time.perf_counter()
    views = [variance_view(s) for s in series]
    model.fit([v.until(fold.val.end) for v in views], fold)
    z_cals = []  # before the refit below, which sees the calibration rows
    for s, v in zip(series, views, strict=True):
        rows = origins(s, fold.cal, stride, step_ms)
        z_cals.append(_standardised(s, model.forecast(v.inputs_only(), rows)[0][:, 0], rows))
    parts = []
    test_rows = [origins(s, fold.test, stride, step_ms) for s in series]
    tested = forecast_test(model, series, test_rows, fold.test, step_ms, refit, view=variance_view)
    horizon = series[0].targets.shape[1]
    ends: dict[str, list[float]] = {name: [] for name in VAR_LEVELS}
    for s, v, rows, z_cal, (point, _) in zip(series, views, test_rows, z_cals, tested, strict=True):
        if len(z_cal) == 0 and len(rows):
            raise ValueError(f"{s.name} has no complete window in the calibration block: its VaR has no quantile")
        part = RiskForecasts(
            np.full(len(rows), s.name),
            s.timestamps[rows],
            v.targets[rows, 0],
            np.maximum(point[:, 0], 1e-18),
            s.targets[rows, -1],
            {},
        )
        # each series its own quantile, as a model of one series has: standardised returns of different
        # coins are not one distribution, and one shared tracker would hear of a crash once per coin
        for name, level in VAR_LEVELS.items():
            if not len(rows):  # nothing to forecast here: no quantile to track either
                part.var[name] = np.empty(0)
                continue
            part.var[name], end = _tracked_var(z_cal, part, level, horizon * step_ms, adaptive_rate)
            ends[name].append(end)
        parts.append(part)
    out = RiskForecasts.concat(parts)
    # the runtime serves one quantile per level for every series of a bundle: the widest of theirs
    out.quantiles = {name: min(q) for name, q in ends.items() if q}
    out.fit_seconds = time.perf_counter() - start
    return out


def _tracked_var(
    z_cal: np.ndarray, f: RiskForecasts, level: float, known_after: int, rate: float
) -> tuple[np.ndarray, float]:
    """One series' VaR at ``level``: its calibration quantile of standardised returns, tracked through test."""
    sd = np.sqrt(f.forecast)
    start_q = Calibration.fit(z_cal[:, None], np.zeros((len(z_cal), 1)), None, 1 - 2 * level)
    z = (f.returns / sd)[:, None]
    lower, _, end = adapt(start_q, z, np.zeros_like(z), None, f.timestamps, known_after, rate)
    return lower[:, 0] * sd, end.lower[0]


def _standardised(s: SeriesArrays, forecast: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """h-step returns over the forecast standard deviation: what the VaR quantile is fitted on."""
    return s.targets[rows, -1] / np.sqrt(np.maximum(forecast, 1e-18))


def score_risk(f: RiskForecasts, horizon: int, step_ms: int) -> dict[str, float]:
    """QLIKE and log-variance MSE, and each VaR's hit rate and tests on non-overlapping windows."""
    if len(f.realised) == 0:
        raise ValueError("no test windows to score: the test range holds no complete window")
    out = {
        "qlike": float(np.nanmean(qlike(f.realised, f.forecast))),
        "mse_log_var": float(np.nanmean(mse_log(f.realised, f.forecast))),
        "zero_variance_windows": float(np.sum(f.realised == 0)),  # no proxy: left out of QLIKE for every model
        "mean_forecast_vol": float(np.mean(np.sqrt(f.forecast))),
        "mean_realised_vol": float(np.mean(np.sqrt(f.realised))),
        "windows": float(len(f.realised)),
    }
    # one window every horizon per series: overlapping windows share outcomes, so their hits cluster
    first = {name: f.timestamps[f.series == name].min() for name in np.unique(f.series)}
    offset = f.timestamps - np.array([first[s] for s in f.series])
    apart = (offset // step_ms) % horizon == 0
    for name, level in VAR_LEVELS.items():
        out.update(var_report(f.returns[apart], f.var[name][apart], level, name))
    return out


def compare_risk(a: RiskForecasts, b: RiskForecasts, horizon: int, stride: int) -> tuple[float, float]:
    """Diebold-Mariano on QLIKE: is a's variance forecast better than b's on the same windows?"""
    lag = int(np.ceil(horizon / stride)) - 1
    d = qlike(a.realised, a.forecast) - qlike(b.realised, b.forecast)
    keep = np.isfinite(d)  # windows with no variance proxy count for neither
    return dm_test(d[keep], lag, a.timestamps[keep])
