"""The evaluation of a volatility run: the tuned LSTM against every classical volatility model, then the refit.

Same folds, blocks and windows as the return evaluation; the score is QLIKE, and the gate's reference
is the *best* classical baseline on these windows (the one with the lowest QLIKE), with a
Diebold-Mariano test on QLIKE against it. Value-at-Risk (95% and 99%) is reported per fold with its
hit rate and the Kupiec and Christoffersen p-values. The configuration is then refitted on every window
up to the cutoff and ships as a risk bundle (variance and VaR from raw candles).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np

from candlecast.config import RunConfig
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.backtest import named_factories
from candlecast.forecasting.neural import NeuralForecaster, neural_forecaster
from candlecast.forecasting.risk import RISK_TABLE_COLUMNS, RiskResult, compare_risk, risk_backtest, variance_view
from candlecast.forecasting.splits import make_plan
from candlecast.forecasting.walkforward import markdown_table
from candlecast.registry import aliases, tracking
from candlecast.registry.evaluation import EvaluationOutcome, comparable_champion, input_example, iso, lineage
from candlecast.registry.refit import refit_bundle, refit_epochs
from candlecast.registry.sweep import SweepOutcome
from candlecast.schema import timeframe_ms
from candlecast.settings import Settings

log = logging.getLogger(__name__)


def evaluate_risk(
    settings: Settings, cfg: RunConfig, series: list[SeriesArrays], sweep: SweepOutcome
) -> EvaluationOutcome:
    """Walk the best volatility configuration forward next to the baselines, refit it to the cutoff, log it."""
    plan = make_plan(series, cfg)
    step_ms = timeframe_ms(cfg.data.timeframe)
    fitted: list[NeuralForecaster] = []

    def model() -> NeuralForecaster:
        forecaster = neural_forecaster(cfg, cfg.sweep.model, sweep.best_params)
        fitted.append(forecaster)
        return forecaster

    factories = {"model": model, **named_factories(list(cfg.backtest.risk_baselines), cfg)}
    champion = comparable_champion(settings, cfg)
    if champion is not None:
        factories["champion"] = lambda: neural_forecaster(cfg, champion[1].model_name, champion[1].hparams)
    baselines = tuple(cfg.backtest.risk_baselines)
    result = risk_backtest(
        factories, series, plan.test_folds, cfg.backtest.stride, step_ms, cfg.predict.adaptive_rate, baselines
    )
    results = _risk_results(result, champion[0] if champion else None, baselines, cfg)
    epochs = refit_epochs(fitted)
    last = result.forecasts["model"][-1]
    refit_start = time.perf_counter()
    bundle, final = refit_bundle(
        cfg,
        [variance_view(s) for s in series],
        sweep.best_params,
        epochs,
        None,
        plan.test.end - cfg.features.horizon * step_ms,
        var_quantiles=dict(last.quantiles),
    )
    results["refit_seconds"] = time.perf_counter() - refit_start
    results["refit_epochs"] = float(epochs)
    with mlflow.start_run(run_id=sweep.parent_run_id):
        mlflow.log_params({f"final.{k}": v for k, v in sweep.best_params.items()})
        mlflow.log_params(lineage(cfg, series, plan, bundle.spec, final) | {"target": cfg.target})
        mlflow.log_metrics(results)
        mlflow.log_dict(cfg.model_dump(mode="json"), "config/run_config.json")
        mlflow.log_text(result.per_fold.to_csv(index=False), "tables/risk_per_fold.csv")
        mlflow.log_text(result.summary.to_csv(), "tables/risk_summary.csv")
        mlflow.log_text(markdown_table(result.summary, RISK_TABLE_COLUMNS), "tables/risk_summary.md")
        with tempfile.TemporaryDirectory() as tmp:
            saved = bundle.save(Path(tmp) / "bundle")
            example = input_example(settings, cfg, bundle.spec.min_candles)
            model_uri = aliases.log_bundle(saved, example, cfg.series[0].symbol)
    tracking.client(settings).set_tag(sweep.parent_run_id, "candlecast.stage", "evaluated")
    log.info(
        "test QLIKE ratio to the best baseline (%s) %.4f (DM p %.3f); refitted to %s",
        cfg.backtest.risk_baselines[int(results["best_baseline_index"])],
        results["qlike_ratio"],
        results["dm_pvalue"],
        iso(bundle.spec.train_end),
    )
    return EvaluationOutcome(run_id=sweep.parent_run_id, model_uri=model_uri, metrics=results)


def _risk_results(
    result: RiskResult, champion: str | None, baselines: tuple[str, ...], cfg: RunConfig
) -> dict[str, float]:
    """The run's metrics: QLIKE against the best baseline (the gate's numbers), VaR per fold, the champion."""
    summary, horizon, stride = result.summary, cfg.features.horizon, cfg.backtest.stride
    best = min(baselines, key=lambda name: summary.loc[name, "qlike"])
    ours = result.pooled("model")
    results = {f"test_{k}": float(v) for k, v in summary.loc["model"].items() if np.isfinite(v)}
    results["qlike_ratio"] = float(summary.loc["model", "qlike"] / summary.loc[best, "qlike"])
    results["dm_pvalue"] = compare_risk(ours, result.pooled(best), horizon, stride)[1]
    results["best_baseline_index"] = float(baselines.index(best))
    for name in baselines:
        results[f"baseline.{name}.qlike"] = float(summary.loc[name, "qlike"])
        results[f"baseline.{name}.var99_hit_rate"] = float(summary.loc[name, "var99_hit_rate"])
    per_fold = result.per_fold[result.per_fold["model"] == "model"]
    for _, row in per_fold.iterrows():
        for k in ("qlike", "var99_hit_rate", "var99_kupiec_p", "var99_christoffersen_p", "var95_hit_rate"):
            results[f"fold{int(row['fold'])}.{k}"] = float(row[k])
    if champion is not None:
        results["champion.version"] = float(champion)
        results["champion.qlike_ratio"] = float(summary.loc["champion", "qlike"] / summary.loc[best, "qlike"])
        results["champion.dm_pvalue"] = compare_risk(ours, result.pooled("champion"), horizon, stride)[1]
    return results
