"""The final fit of the best configuration and its test on the untouched range, next to naive."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from candlecast import metrics, registry, tracking
from candlecast.config import RunConfig
from candlecast.datasets import SeriesArrays
from candlecast.features import FEATURE_COLUMNS
from candlecast.forecaster import Forecaster, ForecasterSpec
from candlecast.settings import Settings
from candlecast.store import CandleStore
from candlecast.sweep import SweepOutcome, make_plan
from candlecast.training import fit_fold, predict_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationOutcome:
    run_id: str
    model_uri: str
    metrics: dict[str, float]


def evaluate_best(
    settings: Settings, cfg: RunConfig, series: list[SeriesArrays], sweep: SweepOutcome
) -> EvaluationOutcome:
    """Retrain the best trial's configuration on the last fold, calibrate, test, log the pyfunc."""
    plan = make_plan(series, cfg)
    fold = plan.folds[-1]
    fc = cfg.features
    fit = fit_fold(cfg.sweep.model, sweep.best_params, series, fold, fc.lookback, fc.horizon, cfg.train)

    def forecasts(within: Any) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
        per_series = {}
        for s in series:
            rows = s.sample_rows(within)
            per_series[s.name] = (s.targets[rows], predict_rows(fit.model, fit.scaler, s, rows, fc.lookback))
        y = np.concatenate([v[0] for v in per_series.values()])
        p = np.concatenate([v[1] for v in per_series.values()])
        return y, p, per_series

    y_val, p_val, _ = forecasts(fold.val)
    lower, upper = metrics.residual_quantiles(y_val, p_val, cfg.predict.interval)
    y_test, p_test, per_series = forecasts(plan.test)
    if len(y_test) == 0:
        raise ValueError("the test range holds no complete window: fetch more history or raise test_fraction")
    # MASE scale: one-step naive MAE over the training range (in-sample, as MASE defines it)
    train_ret = np.concatenate([s.features[fold.train.mask(s.timestamps), 0] for s in series])
    scale = float(np.nanmean(np.abs(train_ret)))
    results = metrics.compare_with_naive(y_test, p_test, scale)
    results["test_coverage"] = metrics.coverage(y_test, p_test, lower, upper)
    results["final_epochs"] = float(fit.epochs)
    results["final_val_loss"] = fit.best_val_loss
    for name, (y, p) in per_series.items():
        for k, v in metrics.compare_with_naive(y, p, scale).items():
            if k in ("rmse_ratio", "test_directional_accuracy"):
                results[f"{name}.{k}"] = v

    spec = ForecasterSpec(
        model_name=cfg.sweep.model,
        hparams=dict(sweep.best_params),
        features=cfg.features.model_dump(),
        timeframe=cfg.data.timeframe,
        scaler=asdict(fit.scaler),
        interval=cfg.predict.interval,
        residual_lower=lower,
        residual_upper=upper,
    )
    forecaster = Forecaster(spec, fit.model)
    client = tracking.client(settings)
    with mlflow.start_run(run_id=sweep.parent_run_id):
        mlflow.log_params({f"final.{k}": v for k, v in sweep.best_params.items()})
        mlflow.log_params(
            {
                "model": cfg.sweep.model,
                "lookback": fc.lookback,
                "horizon": fc.horizon,
                "features": ",".join(FEATURE_COLUMNS),
                "train_end": fold.train.end,
                "test_start": plan.test.start,
                "test_end": plan.test.end,
                "n_train_windows": fit.n_train,
            }
        )
        mlflow.log_metrics(results)
        mlflow.log_dict(cfg.model_dump(mode="json"), "config/run_config.json")
        _log_forecast_plot(series[0], per_series[series[0].name], spec, fc.lookback)
        with tempfile.TemporaryDirectory() as tmp:
            bundle = forecaster.save(Path(tmp) / "bundle")
            example = _input_example(settings, cfg, spec.min_candles)
            model_uri = registry.log_forecaster(bundle, example, cfg.series[0].symbol)
    client.set_tag(sweep.parent_run_id, "candlecast.stage", "evaluated")
    log.info("test rmse_ratio vs naive %.4f, coverage %.2f", results["rmse_ratio"], results["test_coverage"])
    return EvaluationOutcome(run_id=sweep.parent_run_id, model_uri=model_uri, metrics=results)


def _input_example(settings: Settings, cfg: RunConfig, rows: int) -> pd.DataFrame:
    return CandleStore(settings.candles_dir).read(cfg.series[0]).tail(rows).reset_index(drop=True)


def _log_forecast_plot(
    series: SeriesArrays, yp: tuple[np.ndarray, np.ndarray], spec: ForecasterSpec, lookback: int
) -> None:
    """Forecast vs actual on the test range: one-step-ahead and last-step paths with intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y, p = yp
    n = min(len(y), 400)
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for ax, k in zip(axes, [0, y.shape[1] - 1], strict=True):
        ax.plot(y[-n:, k], color="black", lw=0.8, label="actual")
        ax.plot(p[-n:, k], color="tab:blue", lw=0.8, label="forecast")
        ax.fill_between(
            np.arange(n),
            p[-n:, k] + spec.residual_lower[k],
            p[-n:, k] + spec.residual_upper[k],
            color="tab:blue",
            alpha=0.2,
            label=f"{spec.interval:.0%} interval",
        )
        ax.axhline(0, color="grey", lw=0.5, ls="--")
        ax.set_ylabel(f"log return, step {k + 1}")
    axes[0].set_title(f"{series.name}: forecast vs actual on the test range (naive = 0)")
    axes[0].legend(loc="upper right")
    axes[1].set_xlabel("test window")
    mlflow.log_figure(fig, "plots/forecast_vs_actual.png")
    plt.close(fig)
