"""Many series: one global model against one model per series on the same folds, and per-symbol backtests.

A *global* model is one network fitted on every series' windows, each series scaled on its own
training rows and named by a one-hot input (``multi_series.global_model``). The usual alternatives are
one model per series (each symbol's own network, its own scaler) and the *pooled* model the pipeline
trains by default (one network, one shared scaler, no series id). ``compare_global`` scores all three
on exactly the same folds and test windows, next to naive, and tests global against per-series with
Diebold-Mariano on the same windows. ``backtest_source`` is one symbol's `candlecast backtest`, the
unit of work the backtest flow fans out over a Dask cluster. ``pooled_volatility_forecasts`` walks the
pooled variance model (``multi_series.pooled_volatility``) over every symbol at once and hands back each
symbol's forecasts, for a table that sets it beside per-symbol backtests on the same folds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from candlecast.config import RunConfig
from candlecast.features.compute import series_features
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.backtest import load_source, run_backtest
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.neural import neural_forecaster
from candlecast.forecasting.returns import Forecasts, compare, score
from candlecast.forecasting.risk import RiskForecasts
from candlecast.forecasting.splits import Fold, evaluation_folds_for, make_plan
from candlecast.forecasting.targets import Walk
from candlecast.forecasting.targets.returns import RETURNS
from candlecast.forecasting.targets.volatility import VOLATILITY
from candlecast.forecasting.walkforward import backtest
from candlecast.schema import timeframe_ms
from candlecast.settings import Settings

#: The three ways to model many series, in the order the comparison prints them.
CONTESTANTS = ("global", "per_series", "pooled")


@dataclass(frozen=True)
class SeriesBacktest:
    """One symbol's backtest tables: what a fanned-out task hands back (small frames, no forecasts)."""

    name: str
    summary: pd.DataFrame  # one row per model
    per_fold: pd.DataFrame  # one row per (model, fold)


def backtest_source(text: str, models: list[str], cfg: RunConfig, settings: Settings | None = None) -> SeriesBacktest:
    """`candlecast backtest` of one candle file or stored series: its evaluation folds, every named model."""
    source = load_source(text, settings)
    result, _ = run_backtest(source, models, cfg)
    return SeriesBacktest(source.name, result.summary, result.per_fold)


@dataclass
class Comparison:
    """Global, per-series and pooled models on the same folds and windows (``compare_global``)."""

    summary: pd.DataFrame  # one row per contestant: every metric over all series' test windows
    per_series: pd.DataFrame  # rmse_ratio per (contestant, series)
    dm_global_vs_per_series: tuple[float, float]  # (statistic, one-sided p-value: global has lower error)
    forecasts: dict[str, Forecasts] = field(default_factory=dict)  # pooled over folds, per contestant


def compare_global(
    series: list[SeriesArrays],
    cfg: RunConfig,
    model_name: str,
    hparams: dict[str, Any],
    on_fold: Callable[[str, int, dict[str, float]], None] | None = None,
) -> Comparison:
    """Fit each contestant on every evaluation fold of ``cfg`` (folds of the series' common timeline).

    The per-series contestant fits one model per series on that series alone, on the same folds, and
    its forecasts are pooled with the others' before scoring, so every contestant is scored on the
    same windows with the same metrics (pooled over series and folds, each window on its own fold's
    scale). Intervals: the engine calibrates one interval per fitted model, so the per-series models
    get one per series and the global and pooled models one shared by all series.
    """
    folds = make_plan(series, cfg).test_folds
    factories = _factories(cfg, model_name, hparams)
    parts: dict[str, list[Forecasts]] = {}
    for name in ("global", "pooled"):
        parts[name] = _walk(factories[name], series, folds, cfg, name, on_fold)
    per_series = [_walk(factories["per_series"], [s], folds, cfg, "per_series", on_fold) for s in series]
    parts["per_series"] = [Forecasts.concat([fs[i] for fs in per_series]) for i in range(len(folds))]
    seconds = {name: sum(f.fit_seconds for f in parts[name]) for name in ("global", "pooled")}
    seconds["per_series"] = sum(f.fit_seconds for fs in per_series for f in fs)
    pooled = {name: _ordered(Forecasts.concat(parts[name])) for name in CONTESTANTS}
    rows = []
    for name in CONTESTANTS:
        metrics = score(pooled[name], cfg.predict.interval, cfg.backtest.stride)
        rows.append({"model": name, **metrics, "fit_seconds": seconds[name]})
    summary = pd.DataFrame(rows).set_index("model")
    g, p = pooled["global"], pooled["per_series"]
    if not (np.array_equal(g.timestamps, p.timestamps) and np.array_equal(g.series, p.series)):
        raise AssertionError("global and per-series forecasts are not on the same windows")
    dm = compare(g.y - g.point, p.y - p.point, g.timestamps, cfg.backtest.stride)
    return Comparison(summary, _per_series_ratios(pooled), dm, pooled)


def _factories(cfg: RunConfig, model_name: str, hparams: dict[str, Any]) -> dict[str, Callable[[], Forecaster]]:
    return {
        "global": lambda: neural_forecaster(cfg, model_name, hparams, per_series=True),
        "per_series": lambda: neural_forecaster(cfg, model_name, hparams, per_series=False),
        "pooled": lambda: neural_forecaster(cfg, model_name, hparams, per_series=False),
    }


def _walk(
    factory: Callable[[], Forecaster],
    series: list[SeriesArrays],
    folds: list[Fold],
    cfg: RunConfig,
    name: str,
    on_fold: Callable[[str, int, dict[str, float]], None] | None,
) -> list[Forecasts]:
    """One contestant's forecasts, one Forecasts per fold, through the walk-forward engine."""
    label = name if len(series) != 1 or name != "per_series" else f"per_series[{series[0].name}]"
    # the comparison is of return forecasts (RMSE per series next to naive), whatever the config's target
    result = backtest(RETURNS, {label: factory}, series, folds, Walk.of(cfg), on_fold)
    return result.forecasts[label]


def _per_series_ratios(pooled: dict[str, Forecasts]) -> pd.DataFrame:
    rows = []
    for name, f in pooled.items():
        for s in np.unique(f.series):
            mask = f.series == s
            y, p = f.y[mask], f.point[mask]
            rows.append(
                {"model": name, "series": str(s), "rmse_ratio": float(np.sqrt(np.mean((y - p) ** 2) / np.mean(y**2)))}
            )
    return pd.DataFrame(rows).pivot(index="series", columns="model", values="rmse_ratio")[list(CONTESTANTS)]


def _ordered(f: Forecasts) -> Forecasts:
    return f.subset(np.lexsort((f.timestamps, f.series)))


def pooled_volatility_forecasts(
    cfg: RunConfig,
    candles_by_symbol: dict[str, pd.DataFrame],
    model_name: str = "lstm",
    hparams: dict[str, Any] | None = None,
) -> dict[str, RiskForecasts]:
    """The pooled variance model walked forward over every symbol at once: each symbol's test forecasts.

    One network per fold over all symbols (``multi_series.pooled_volatility``, residual on log-HAR unless
    the config says direct), on the folds `candlecast backtest` cuts from the symbols' common timeline,
    so a symbol that spans it gets the windows its own backtest scores. Forecasts are pooled over folds,
    in time order per symbol; the VaR quantile is calibrated over every symbol together.
    """
    if cfg.multi_series.pooled_volatility == "off":
        multi = cfg.multi_series.model_copy(update={"pooled_volatility": "residual"})
        cfg = cfg.model_copy(update={"multi_series": multi})
    if cfg.target != "volatility":
        raise ValueError("pooled_volatility_forecasts forecasts volatility: set target: volatility")
    fc, step = cfg.features, timeframe_ms(cfg.data.timeframe)
    series = []
    for symbol, candles in sorted(candles_by_symbol.items()):
        s = SeriesArrays.from_frame(symbol, series_features(candles, fc, cfg.data.timeframe), fc.horizon)
        s.mark_windows(fc.lookback, step)
        series.append(s)
    folds = evaluation_folds_for(np.concatenate([s.timestamps for s in series]), cfg)
    factory: dict[str, Callable[[], Forecaster]] = {"pooled": lambda: neural_forecaster(cfg, model_name, hparams or {})}
    pooled = backtest(VOLATILITY, factory, series, folds, Walk.of(cfg)).pooled("pooled")
    return {s.name: pooled.subset(pooled.series == s.name) for s in series}
