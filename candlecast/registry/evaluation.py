"""The evaluation of the best configuration: walk-forward over the untouched test range, next to the baselines.

One path for every target (returns, volatility, ...: candlecast.forecasting.targets). Each evaluation
fold refits the model (and every baseline of the target, and the current champion's configuration)
on its training range, derives its intervals or Value-at-Risk on its calibration block, and scores its
test block. Then the configuration is refitted on every candle up to the cutoff
(candlecast.registry.refit): that model ships. Per-fold and pooled metrics, the comparison with the
champion on the same windows, tables and (for returns) one forecast plot per series go to the run.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.backtest import named_factories
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.neural import NeuralForecaster, neural_forecaster, pooled_spec
from candlecast.forecasting.splits import Plan, make_plan
from candlecast.forecasting.targets import Walk, target_of
from candlecast.forecasting.walkforward import backtest, markdown_table
from candlecast.registry import aliases, tracking
from candlecast.registry.bundle import BundleSpec
from candlecast.registry.eval_progress import EvaluationReporter
from candlecast.registry.plots import log_forecast_plots
from candlecast.registry.refit import refit_bundle, refit_epochs
from candlecast.registry.sweep import SweepOutcome
from candlecast.schema import timeframe_ms
from candlecast.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationOutcome:
    """An evaluated model: its MLflow run, its logged model and the metrics the promotion gate reads."""

    run_id: str
    model_uri: str
    metrics: dict[str, float]


def model_factories(
    cfg: RunConfig,
    model_name: str,
    hparams: dict[str, Any],
    final: list[NeuralForecaster] | None = None,
    progress: EvaluationReporter | None = None,
) -> dict[str, Callable[[], Forecaster]]:
    """The model and the target's configured baselines as fresh-per-fold factories: what promotion re-scores too.

    ``final`` (if given) collects each fold's fitted neural forecaster, so the last can be shipped;
    ``progress`` (if given) hears each of its epochs.
    """

    def model() -> Forecaster:
        watch = [progress.epochs("model")] if progress else None
        forecaster = neural_forecaster(cfg, model_name, hparams, callbacks=watch)
        if final is not None:
            final.append(forecaster)
        return forecaster

    return {"model": model, **named_factories(target_of(cfg).configured_baselines(cfg), cfg)}


def evaluate_best(
    settings: Settings, cfg: RunConfig, series: list[SeriesArrays], sweep: SweepOutcome
) -> EvaluationOutcome:
    """Walk the best trial's configuration forward over the test folds, refit it to the cutoff, log it.

    Any target: the run's ``Target`` scores the folds, names the metrics the gate reads and says what
    the shipped model carries (interval offsets, VaR quantiles).
    """
    target = target_of(cfg)
    plan = make_plan(series, cfg)
    step_ms = timeframe_ms(cfg.data.timeframe)
    walk = Walk.of(cfg, references=target.configured_baselines(cfg))
    fitted: list[NeuralForecaster] = []
    champion = comparable_champion(settings, cfg)
    names = ["model", *target.configured_baselines(cfg), *(["champion"] if champion else [])]
    progress = EvaluationReporter(names, cfg.sweep.model, len(plan.test_folds), target.progress)
    factories = model_factories(cfg, cfg.sweep.model, sweep.best_params, fitted, progress)
    if champion is not None:  # the gate compares with the champion's configuration refitted on these very folds
        champ, watch = champion[1], [progress.epochs("champion")]
        factories["champion"] = lambda: champion_forecaster(cfg, champ, watch)
    assert list(factories) == names, "the progress counts the fits the backtest runs"
    result = backtest(target, factories, series, plan.test_folds, walk, on_fold=progress.fold_done)
    results = target.run_metrics(result, champion[0] if champion else None, walk)
    epochs = refit_epochs(fitted)
    shipped = target.shipped(result.forecasts["model"][-1])
    calibration_end = plan.test.end - cfg.features.horizon * step_ms
    refit_start = time.perf_counter()
    progress.refit_started(epochs)
    bundle, final = refit_bundle(
        cfg, series, sweep.best_params, epochs, shipped, calibration_end, [progress.epochs("model")]
    )
    progress.refit_done()
    results["refit_seconds"] = time.perf_counter() - refit_start
    results["refit_epochs"] = float(epochs)
    spec = bundle.spec
    tables = f"tables/{target.table_prefix}"
    with mlflow.start_run(run_id=sweep.parent_run_id):
        mlflow.log_params({f"final.{k}": v for k, v in sweep.best_params.items()})
        mlflow.log_params(lineage(cfg, series, plan, spec, final))
        mlflow.log_metrics(results)
        mlflow.log_dict(cfg.model_dump(mode="json"), "config/run_config.json")
        mlflow.log_text(result.per_fold.to_csv(index=False), f"{tables}_per_fold.csv")
        mlflow.log_text(result.summary.to_csv(), f"{tables}_summary.csv")
        mlflow.log_text(markdown_table(result.summary, target.table_columns), f"{tables}_summary.md")
        if target.forecast_plot:
            log_forecast_plots(result.pooled("model"), cfg.predict.interval)
        with tempfile.TemporaryDirectory() as tmp:
            saved = bundle.save(Path(tmp) / "bundle")
            example = input_example(settings, cfg, spec.min_candles)
            model_uri = aliases.log_bundle(saved, example, cfg.series[0].symbol)
    tracking.client(settings).set_tag(sweep.parent_run_id, "candlecast.stage", "evaluated")
    log.info("%s; refitted to %s in %.1f s", target.headline(results), iso(spec.train_end), results["refit_seconds"])
    return EvaluationOutcome(run_id=sweep.parent_run_id, model_uri=model_uri, metrics=results)


def lineage(
    cfg: RunConfig, series: list[SeriesArrays], plan: Plan, spec: BundleSpec, final: NeuralForecaster
) -> dict[str, Any]:
    """What the shipped model saw, as readable text (ISO times) for the MLflow UI."""
    assert final.result is not None
    return {
        "model": cfg.sweep.model,
        "target": cfg.target,
        "lookback": cfg.features.lookback,
        "horizon": cfg.features.horizon,
        "features": ",".join(series[0].columns),
        "test_folds": len(plan.test_folds),
        "test_start": iso(plan.test.start),
        "test_end": iso(plan.test.end),
        "data_cutoff": iso(spec.data_cutoff),
        "train_end": iso(spec.train_end),
        "calibration_end": iso(spec.calibration_end),
        "n_train_windows": final.result.n_train,
    }


def iso(ms: int | None) -> str:
    """A compact UTC time (``2024-01-01T00:00Z``) for tags and descriptions; "none" for a missing cutoff."""
    return "none" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")


def comparable_champion(settings: Settings, cfg: RunConfig) -> tuple[str, BundleSpec] | None:
    """The current @champion's spec, if it can be refitted on this run's features and timeframe.

    A champion built on other features or another timeframe cannot be refitted here; the gate then
    refuses rather than compare numbers from different periods, and says so in its reasons.
    """
    found = aliases.champion_spec(tracking.client(settings), cfg.promotion.model_name)
    if found is None:
        return None
    version, spec = found
    same = (
        spec.timeframe == cfg.data.timeframe
        and spec.features == cfg.features.model_dump(mode="json")
        and target_of(cfg).bundle_key == spec.target
        # a pooled champion's mode (residual or direct) is this run's, so the switch must be on
        and (_id_input(spec) != "index" or cfg.multi_series.pooled_volatility != "off")
    )
    if not same:
        log.info("champion v%s used other features, timeframe or pooling: it cannot be refitted here", version)
        return None
    return found


def champion_forecaster(cfg: RunConfig, spec: BundleSpec, callbacks: list | None = None) -> NeuralForecaster:
    """The champion's configuration to refit on this run's folds: its network, and its way of pooling series.

    Its scaler says how it was fitted on many series (``id_input`` "index": the pooled variance model;
    "one_hot": a global model; one shared scaler: neither), whatever this run's ``multi_series`` asks,
    so a pooled challenger meets a per-coin champion as it was, not refitted pooled. (A pooled champion
    is refitted with this run's ``pooled_volatility`` mode: ``comparable_champion`` refuses it when off.)
    """
    id_input = _id_input(spec)
    pooled = pooled_spec(cfg) if id_input == "index" else None
    return neural_forecaster(
        cfg, spec.model_name, spec.hparams, callbacks=callbacks, per_series=id_input == "one_hot", pooled=pooled
    )


def _id_input(spec: BundleSpec) -> str | None:
    """How the bundle's network hears which series a window is from; None for one shared scaler."""
    return spec.scaler.get("id_input", "one_hot") if "names" in spec.scaler else None


def input_example(settings: Settings, cfg: RunConfig, rows: int) -> pd.DataFrame:
    """The last ``rows`` stored candles of the first series: the logged model's example input (and signature)."""
    return CandleStore(settings.candles_dir).read(cfg.series[0]).tail(rows).reset_index(drop=True)
