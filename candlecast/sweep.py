"""The Optuna sweep: seeded TPE over a model's search space, pruned by epoch, one MLflow child run per trial.

The objective is the mean RMSE ratio to naive over the sweep's walk-forward folds, each scored on
its own test block after fitting on train and early-stopping on validation, through the same
engine as the evaluation (candlecast.backtest). The evaluation's test range is never touched here.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from mlflow.entities import RunStatus
from optuna_integration import PyTorchLightningPruningCallback

from candlecast import tracking
from candlecast.backtest import run_fold, score, training_scales
from candlecast.config import RunConfig
from candlecast.datasets import SeriesArrays
from candlecast.interface import quantile_levels
from candlecast.schema import timeframe_ms
from candlecast.settings import Settings
from candlecast.splits import Plan, plan_splits
from candlecast.training import EpochMetrics, NeuralForecaster
from models import search_space_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepOutcome:
    parent_run_id: str
    study_name: str
    best_params: dict[str, Any]
    best_value: float
    n_complete: int
    n_pruned: int


def make_plan(series: list[SeriesArrays], cfg: RunConfig) -> Plan:
    """The folds of a run: a pure function of the series' timeline and the config."""
    sp = cfg.split
    return plan_splits(
        np.concatenate([s.timestamps for s in series]),
        timeframe_ms(cfg.data.timeframe),
        gap=cfg.gap,
        test_fraction=sp.test_fraction,
        val_fraction=sp.val_fraction,
        n_folds=sp.n_folds,
        test_folds=sp.test_folds,
        window=sp.window,
        train_fraction=sp.train_fraction,
    )


def neural(cfg: RunConfig, model_name: str, hparams: dict[str, Any], **kwargs: Any) -> NeuralForecaster:
    """A Lightning forecaster configured by the run: window, horizon, quantiles, winsorizing."""
    fc = cfg.features
    return NeuralForecaster(
        model_name,
        hparams,
        fc.lookback,
        fc.horizon,
        cfg.train,
        quantile_levels(cfg.predict.interval),
        fc.winsor_quantile if fc.denoise == "winsorize" else None,
        **kwargs,
    )


def run_sweep(settings: Settings, cfg: RunConfig, series: list[SeriesArrays], parent_run_id: str) -> SweepOutcome:
    client = tracking.client(settings)
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    plan = make_plan(series, cfg)
    search_space = search_space_of(cfg.sweep.model)
    step_ms = timeframe_ms(cfg.data.timeframe)
    study_name = f"{cfg.name}-{cfg.sweep.model}-{parent_run_id[:12]}"
    if settings.optuna_url.startswith("sqlite:"):
        settings.root.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=study_name,
        storage=settings.optuna_url,
        load_if_exists=True,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=cfg.sweep.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=cfg.sweep.pruner_startup_trials, n_warmup_steps=1),
    )

    def objective(trial: optuna.Trial) -> float:
        hparams = search_space(trial)
        trial.set_user_attr("hparams", hparams)
        run = client.create_run(
            experiment_id,
            run_name=f"trial-{trial.number}",
            tags={"mlflow.parentRunId": parent_run_id, "optuna.study": study_name, "optuna.trial": str(trial.number)},
        )
        run_id = run.info.run_id
        client.log_batch(run_id, params=_params(hparams))
        ratios: list[float] = []
        state = "FAILED"
        try:
            for i, fold in enumerate(plan.folds):
                history = EpochMetrics()
                # epoch-level pruning on the first fold; later folds only add to the mean
                pruning = [PyTorchLightningPruningCallback(trial, monitor="val_loss")] if i == 0 else []
                model = neural(
                    cfg, cfg.sweep.model, hparams, max_epochs=cfg.sweep.max_epochs, callbacks=[history, *pruning]
                )
                try:
                    forecasts = run_fold(model, series, fold, cfg.predict.interval, cfg.backtest.stride, step_ms)
                finally:
                    _log_history(client, run_id, history.history, prefix=f"fold{i}_")
                scales = training_scales(series, fold.train, step_ms)
                metrics = score(forecasts, scales, cfg.predict.interval, cfg.backtest, step_ms)
                client.log_metric(run_id, f"fold{i}_rmse_ratio", metrics["rmse_ratio"])
                ratios.append(metrics["rmse_ratio"])
            value = float(np.mean(ratios))
            client.log_metric(run_id, "rmse_ratio", value)
            state = "COMPLETE"
            return value
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        finally:
            client.set_tag(run_id, "optuna.state", state)
            client.set_terminated(
                run_id, RunStatus.to_string(RunStatus.FINISHED if state != "FAILED" else RunStatus.FAILED)
            )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study.optimize(
            objective,
            n_trials=cfg.sweep.n_trials,
            timeout=cfg.sweep.timeout_s,
            gc_after_trial=True,
            show_progress_bar=sys.stderr.isatty(),
        )
    except BaseException:
        tracking.finish_run(settings, parent_run_id, failed=True)
        raise
    states = [t.state for t in study.trials]
    complete = states.count(optuna.trial.TrialState.COMPLETE)
    if complete == 0:
        raise RuntimeError(f"sweep {study_name}: no trial completed ({len(states)} tried); see the trial runs")
    outcome = SweepOutcome(
        parent_run_id=parent_run_id,
        study_name=study_name,
        best_params=dict(study.best_trial.user_attrs["hparams"]),
        best_value=float(study.best_value),
        n_complete=complete,
        n_pruned=states.count(optuna.trial.TrialState.PRUNED),
    )
    client.log_batch(parent_run_id, params=_params({f"best.{k}": v for k, v in outcome.best_params.items()}))
    client.log_metric(parent_run_id, "sweep_best_rmse_ratio", outcome.best_value)
    client.log_metric(parent_run_id, "sweep_trials_complete", complete)
    client.log_metric(parent_run_id, "sweep_trials_pruned", outcome.n_pruned)
    _log_history_plot(client, parent_run_id, study)
    log.info("sweep %s: best rmse_ratio %.4f with %s", study_name, outcome.best_value, outcome.best_params)
    return outcome


def _params(values: dict[str, Any]) -> list:
    from mlflow.entities import Param

    return [Param(k, str(v)) for k, v in values.items()]


def _log_history(client: Any, run_id: str, history: list[dict[str, float]], prefix: str) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [
        Metric(f"{prefix}{k}", v, timestamp=now, step=epoch)
        for epoch, row in enumerate(history)
        for k, v in row.items()
        if np.isfinite(v)
    ]
    if metrics:
        client.log_batch(run_id, metrics=metrics)


def _log_history_plot(client: Any, run_id: str, study: optuna.Study) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [t for t in study.trials if t.value is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([t.number for t in done], [t.value for t in done], "o", label="trial RMSE ratio to naive")
    ax.plot([t.number for t in done], np.minimum.accumulate([t.value for t in done]), "-", label="best so far")
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    ax.axhline(1.0, color="grey", lw=0.5, ls="--", label="naive random walk")
    ax.set(
        xlabel="trial",
        ylabel="mean RMSE ratio to naive over folds",
        title=f"Optuna sweep {study.study_name} ({pruned} pruned)",
    )
    ax.legend()
    client.log_figure(run_id, fig, "plots/sweep_history.png")
    plt.close(fig)
