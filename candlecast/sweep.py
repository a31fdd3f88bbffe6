"""The Optuna sweep: seeded TPE over a model's search space, pruned by epoch, one MLflow child run per trial.

The objective is the mean best validation loss over the walk-forward folds of the development
range; the test range is never touched here.
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
from candlecast.config import RunConfig
from candlecast.datasets import SeriesArrays
from candlecast.schema import timeframe_ms
from candlecast.settings import Settings
from candlecast.splits import Plan, plan_splits
from candlecast.training import EpochMetrics, fit_fold
from models import MODELS

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
    fc = cfg.features
    return plan_splits(
        np.concatenate([s.timestamps for s in series]),
        timeframe_ms(cfg.data.timeframe),
        gap=fc.lookback + fc.horizon,
        test_fraction=cfg.split.test_fraction,
        val_fraction=cfg.split.val_fraction,
        n_folds=cfg.split.n_folds,
    )


def run_sweep(settings: Settings, cfg: RunConfig, series: list[SeriesArrays], parent_run_id: str) -> SweepOutcome:
    client = tracking.client(settings)
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    plan = make_plan(series, cfg)
    _, search_space = MODELS[cfg.sweep.model]
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
        run = client.create_run(
            experiment_id,
            run_name=f"trial-{trial.number}",
            tags={"mlflow.parentRunId": parent_run_id, "optuna.study": study_name, "optuna.trial": str(trial.number)},
        )
        run_id = run.info.run_id
        client.log_batch(run_id, params=_params(hparams))
        losses: list[float] = []
        state = "FAILED"
        try:
            for i, fold in enumerate(plan.folds):
                history = EpochMetrics()
                # epoch-level pruning on the first fold; later folds only add to the mean
                pruning = [PyTorchLightningPruningCallback(trial, monitor="val_loss")] if i == 0 else []
                try:
                    result = fit_fold(
                        cfg.sweep.model,
                        hparams,
                        series,
                        fold,
                        cfg.features.lookback,
                        cfg.features.horizon,
                        cfg.train,
                        max_epochs=cfg.sweep.max_epochs,
                        callbacks=[history, *pruning],
                    )
                finally:
                    _log_history(client, run_id, history.history, prefix=f"fold{i}_")
                losses.append(result.best_val_loss)
            value = float(np.mean(losses))
            client.log_metric(run_id, "val_loss", value)
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
        best_params=dict(study.best_params),
        best_value=float(study.best_value),
        n_complete=complete,
        n_pruned=states.count(optuna.trial.TrialState.PRUNED),
    )
    client.log_batch(parent_run_id, params=_params({f"best.{k}": v for k, v in outcome.best_params.items()}))
    client.log_metric(parent_run_id, "sweep_best_val_loss", outcome.best_value)
    client.log_metric(parent_run_id, "sweep_trials_complete", complete)
    client.log_metric(parent_run_id, "sweep_trials_pruned", outcome.n_pruned)
    _log_history_plot(client, parent_run_id, study)
    log.info("sweep %s: best val_loss %.4f with %s", study_name, outcome.best_value, outcome.best_params)
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
    ax.plot([t.number for t in done], [t.value for t in done], "o", label="trial val_loss")
    ax.plot([t.number for t in done], np.minimum.accumulate([t.value for t in done]), "-", label="best so far")
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values]
    ax.plot([t.number for t in pruned], [min(t.intermediate_values.values()) for t in pruned], "x", label="pruned")
    ax.set(xlabel="trial", ylabel="validation loss (scaled MSE)", title=f"Optuna sweep {study.study_name}")
    ax.legend()
    client.log_figure(run_id, fig, "plots/sweep_history.png")
    plt.close(fig)
