"""The evaluation of the best configuration: walk-forward over the untouched test range, next to the baselines.

Each evaluation fold refits the model (and every baseline) on its training range, calibrates the
intervals on its validation range and scores its test block; the model of the last fold, with its
calibration, becomes the logged forecaster. Per-fold and aggregated metrics, a per-fold table and
a forecast-vs-actual plot go to the run.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.backtest import named_factories
from candlecast.forecasting.interface import Forecaster, quantile_levels
from candlecast.forecasting.neural import NeuralForecaster, neural_forecaster
from candlecast.forecasting.splits import make_plan
from candlecast.forecasting.walkforward import Forecasts, backtest, markdown_table
from candlecast.registry import aliases, tracking
from candlecast.registry.bundle import BundleSpec, ModelBundle
from candlecast.registry.sweep import SweepOutcome
from candlecast.schema import timeframe_ms
from candlecast.settings import Settings

log = logging.getLogger(__name__)

#: Metrics of the model as the run logs them (the names the promotion gate reads).
_LOGGED_AS = {"rmse_ratio", "mae_ratio", "dm_stat", "dm_pvalue", "naive_rmse", "naive_mae", "naive_mase", "windows"}


@dataclass(frozen=True)
class EvaluationOutcome:
    run_id: str
    model_uri: str
    metrics: dict[str, float]


def model_factories(
    cfg: RunConfig, model_name: str, hparams: dict[str, Any], final: list[NeuralForecaster] | None = None
) -> dict[str, Callable[[], Forecaster]]:
    """The model and the configured baselines as fresh-per-fold factories: what promotion re-scores too.

    ``final`` (if given) collects each fold's fitted neural forecaster, so the last can be shipped.
    """

    def model() -> Forecaster:
        forecaster = neural_forecaster(cfg, model_name, hparams)
        if final is not None:
            final.append(forecaster)
        return forecaster

    return {"model": model, **named_factories(cfg.backtest.baselines, cfg)}


def evaluate_best(
    settings: Settings, cfg: RunConfig, series: list[SeriesArrays], sweep: SweepOutcome
) -> EvaluationOutcome:
    """Walk the best trial's configuration forward over the test folds, log it and its forecaster."""
    plan = make_plan(series, cfg)
    fc = cfg.features
    fitted: list[NeuralForecaster] = []
    factories = model_factories(cfg, cfg.sweep.model, sweep.best_params, fitted)
    champion = _comparable_champion(settings, cfg)
    if champion is not None:
        # the gate compares with the champion's configuration refitted on these very folds
        version, spec = champion
        factories["champion"] = lambda: neural_forecaster(cfg, spec.model_name, spec.hparams)
    result = backtest(
        factories,
        series,
        plan.test_folds,
        cfg.predict.interval,
        cfg.backtest,
        timeframe_ms(cfg.data.timeframe),
    )
    summary = result.summary
    results = {(k if k in _LOGGED_AS else f"test_{k}"): float(v) for k, v in summary.loc["model"].items()}
    if champion is not None:
        results["champion.version"] = float(champion[0])
        results["champion.rmse_ratio"] = float(summary.loc["champion", "rmse_ratio"])
    for name in summary.index.drop(["model", *(["champion"] if champion is not None else [])]):
        for k in ("rmse_ratio", "directional_accuracy", "coverage", "dm_pvalue", "trade_sharpe"):
            results[f"baseline.{name}.{k}"] = float(summary.loc[name, k])
    per_fold = result.per_fold
    for _, row in per_fold[per_fold["model"] == "model"].iterrows():
        results[f"fold{int(row['fold'])}.rmse_ratio"] = float(row["rmse_ratio"])
    forecasts = result.pooled("model")
    for name in np.unique(forecasts.series):
        mask = forecasts.series == name
        results[f"{name}.rmse_ratio"] = float(
            np.sqrt(np.mean((forecasts.y[mask] - forecasts.point[mask]) ** 2) / np.mean(forecasts.y[mask] ** 2))
        )
    last_calibration = result.forecasts["model"][-1].calibration
    final = fitted[-1]  # fitted on the last fold: the newest data; its calibration ships with it
    if final.result is None or last_calibration is None:
        raise RuntimeError("the last evaluation fold left no fitted model")
    results["final_epochs"] = float(final.result.epochs)
    results["final_val_loss"] = final.result.best_val_loss

    spec = BundleSpec(
        model_name=cfg.sweep.model,
        hparams=dict(sweep.best_params),
        features=fc.model_dump(mode="json"),
        timeframe=cfg.data.timeframe,
        scaler=asdict(final.result.scaler),
        columns=list(series[0].columns),
        quantiles=quantile_levels(cfg.predict.interval),
        calibration=asdict(last_calibration),
    )
    forecaster = ModelBundle(spec, final.result.model)
    client = tracking.client(settings)
    last = plan.test_folds[-1]
    with mlflow.start_run(run_id=sweep.parent_run_id):
        mlflow.log_params({f"final.{k}": v for k, v in sweep.best_params.items()})
        mlflow.log_params(
            {
                "model": cfg.sweep.model,
                "lookback": fc.lookback,
                "horizon": fc.horizon,
                "features": ",".join(series[0].columns),
                "test_folds": len(plan.test_folds),
                "train_end": last.train.end,
                "test_start": plan.test.start,
                "test_end": plan.test.end,
                "n_train_windows": final.result.n_train,
            }
        )
        mlflow.log_metrics(results)
        mlflow.log_dict(cfg.model_dump(mode="json"), "config/run_config.json")
        mlflow.log_text(per_fold.to_csv(index=False), "tables/backtest_per_fold.csv")
        mlflow.log_text(summary.to_csv(), "tables/backtest_summary.csv")
        mlflow.log_text(markdown_table(summary), "tables/backtest_summary.md")
        _log_forecast_plot(series[0].name, forecasts, cfg.predict.interval)
        with tempfile.TemporaryDirectory() as tmp:
            bundle = forecaster.save(Path(tmp) / "bundle")
            example = _input_example(settings, cfg, spec.min_candles)
            model_uri = aliases.log_bundle(bundle, example, cfg.series[0].symbol)
    client.set_tag(sweep.parent_run_id, "candlecast.stage", "evaluated")
    log.info("test rmse_ratio vs naive %.4f, coverage %.2f", results["rmse_ratio"], results["test_coverage"])
    return EvaluationOutcome(run_id=sweep.parent_run_id, model_uri=model_uri, metrics=results)


def _comparable_champion(settings: Settings, cfg: RunConfig) -> tuple[str, BundleSpec] | None:
    """The current @champion's spec, if it can be refitted on this run's features and timeframe.

    A champion built on other features or another timeframe cannot be refitted here; the gate then
    falls back to its recorded test metrics and says so in its reasons.
    """
    found = aliases.champion_spec(tracking.client(settings), cfg.promotion.model_name)
    if found is None:
        return None
    version, spec = found
    same = spec.timeframe == cfg.data.timeframe and spec.features == cfg.features.model_dump(mode="json")
    if not same:
        log.info("champion v%s used other features or timeframe: gate uses its recorded metrics", version)
        return None
    return found


def _input_example(settings: Settings, cfg: RunConfig, rows: int) -> pd.DataFrame:
    return CandleStore(settings.candles_dir).read(cfg.series[0]).tail(rows).reset_index(drop=True)


def _log_forecast_plot(name: str, f: Forecasts, interval: float) -> None:
    """Forecast vs actual on the test windows: one-step-ahead and last-step paths with intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mask = f.series == name
    y, p, lo, hi = f.y[mask], f.point[mask], f.lower[mask], f.upper[mask]
    n = min(len(y), 400)
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for ax, k in zip(axes, [0, y.shape[1] - 1], strict=True):
        ax.plot(y[-n:, k], color="black", lw=0.8, label="actual")
        ax.plot(p[-n:, k], color="tab:blue", lw=0.8, label="forecast")
        ax.fill_between(np.arange(n), lo[-n:, k], hi[-n:, k], color="tab:blue", alpha=0.2, label=f"{interval:.0%}")
        ax.axhline(0, color="grey", lw=0.5, ls="--")
        ax.set_ylabel(f"log return, step {k + 1}")
    axes[0].set_title(f"{name}: forecast vs actual on the last test windows (naive = 0)")
    axes[0].legend(loc="upper right")
    axes[1].set_xlabel("test window")
    mlflow.log_figure(fig, "plots/forecast_vs_actual.png")
    plt.close(fig)
