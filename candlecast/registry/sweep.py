"""The Optuna sweep: seeded TPE over a model's search space, pruned by epoch, one MLflow child run per trial.

The objective is the mean ratio to the naive forecast over the sweep's walk-forward folds (RMSE for
returns, QLIKE for volatility: candlecast.forecasting.backtest.fold_objective), each scored on
its own test block after fitting on train and early-stopping on validation, through the same
engine as the evaluation (candlecast.forecasting.walkforward). The evaluation's test range is never touched here.

A study is named by what it searches (model, config, data extent), so a sweep killed midway resumes
where it stopped when run again: completed trials are kept and only the rest of the budget runs.
Several worker processes can share one study (``sweep.workers``); the study is created once first
(DEPENDENCIES.md: concurrent creation of a fresh sqlite storage races).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from mlflow.entities import RunStatus
from optuna_integration import PyTorchLightningPruningCallback

from candlecast.config import RunConfig
from candlecast.features.windows import SeriesArrays, load_series
from candlecast.forecasting.backtest import fold_objective, objective_name
from candlecast.forecasting.neural import EpochMetrics, neural_forecaster
from candlecast.forecasting.recency import WINDOW_DAYS
from candlecast.forecasting.splits import make_plan
from candlecast.models import search_space_of
from candlecast.registry import sweep_plots, tracking
from candlecast.registry.retrain_search import RetrainSearch
from candlecast.registry.sweep_progress import EpochProgress, SweepReporter, finished_trials
from candlecast.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepOutcome:
    """What a finished sweep hands to the evaluation: the best configuration and how the budget went."""

    parent_run_id: str
    study_name: str
    best_params: dict[str, Any]
    best_value: float
    n_complete: int
    n_pruned: int


def study_name(cfg: RunConfig, series: list[SeriesArrays], search: RetrainSearch | None = None) -> str:
    """``<config>-<model>-<digest>``: the same search on the same data gets the same (resumable) study.

    A retrain's is ``<config>-<model>-retrain-v<degraded version>-<digest>`` (registry/retrain_search.py).
    """
    if cfg.sweep.study_name:
        return cfg.sweep.study_name
    what: dict[str, Any] = {
        "config": cfg.model_dump(mode="json", include={"features", "split", "backtest", "predict"}),
        "train": cfg.train.model_dump(mode="json", exclude={"threads"}),
        "sweep": cfg.sweep.model_dump(mode="json", include={"model", "max_epochs", "seed"}),
        "data": [(s.name, int(s.timestamps[0]), int(s.timestamps[-1]), len(s.timestamps)) for s in series],
    }
    if cfg.multi_series.global_model:  # another model than the pooled default: never resume its study
        what["global_model"] = True
    if cfg.multi_series.pooled_volatility != "off":  # the pooled variance model: its own study too
        what["pooled_volatility"] = cfg.multi_series.pooled_volatility
    if search is not None:
        what["retrain"] = {"degraded": search.degraded, "windows": list(search.windows)}
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:10]
    retrain = f"-retrain-v{search.degraded}" if search is not None else ""
    return f"{cfg.name}-{cfg.sweep.model}{retrain}-{digest}"


def _pruner(cfg: RunConfig) -> optuna.pruners.BasePruner:
    if cfg.sweep.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=cfg.sweep.max_epochs)
    if cfg.sweep.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=cfg.sweep.pruner_startup_trials, n_warmup_steps=1)


def _storage(settings: Settings) -> optuna.storages.RDBStorage:
    """RDB storage with a heartbeat: a trial whose process died is marked FAIL on the next run."""
    if settings.optuna_url.startswith("sqlite:"):
        settings.root.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: stable since 2.9
        return optuna.storages.RDBStorage(
            settings.optuna_url, heartbeat_interval=30, grace_period=90, engine_kwargs=_engine_kwargs(settings)
        )


def _engine_kwargs(settings: Settings) -> dict[str, Any]:
    return {"connect_args": {"timeout": 60}} if settings.optuna_url.startswith("sqlite:") else {}


def _budget(cfg: RunConfig) -> optuna.study.MaxTrialsCallback:
    """Stops every worker once the study holds n_trials finished trials, resumed ones included."""
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return optuna.study.MaxTrialsCallback(cfg.sweep.n_trials, states=done)


def run_sweep(
    settings: Settings,
    cfg: RunConfig,
    feature_paths: dict[str, str],
    parent_run_id: str,
    search: RetrainSearch | None = None,
) -> SweepOutcome:
    """Run (or resume) the study to ``sweep.n_trials`` finished trials, in ``sweep.workers`` processes.

    ``search``: a retrain's study (the champion's configuration first, the training window searched too).

    The helper processes start before anything else: a fresh interpreter spends a while importing
    torch, Lightning, MLflow and Optuna (over a minute on a busy 2-core machine), and that now
    overlaps this process's own set-up; each helper waits for the study to exist before it loads it.
    """
    helpers = _start_helpers(cfg, feature_paths, parent_run_id, search)
    try:
        return _run_study(settings, cfg, feature_paths, parent_run_id, helpers, search)
    finally:
        helpers.stop()  # after a failure anywhere; a no-op once they have been joined


@dataclass
class _Helpers:
    """The helper processes of a parallel sweep and the event that tells them the study exists."""

    processes: list[Any]
    study_ready: Any  # a multiprocessing Event

    def join(self) -> list[int | None]:
        """Wait for every helper; the exit codes of those that failed."""
        for process in self.processes:
            process.join()
        return [p.exitcode for p in self.processes if p.exitcode != 0]

    def stop(self) -> None:
        """Terminate helpers still running (the parent failed), so none outlives its sweep."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
                process.join()


def _start_helpers(
    cfg: RunConfig, feature_paths: dict[str, str], parent_run_id: str, search: RetrainSearch | None
) -> _Helpers:
    context = mp.get_context("spawn")
    study_ready = context.Event()
    processes = [
        context.Process(
            target=_worker,
            args=(dict(os.environ), cfg.model_dump(mode="json"), dict(feature_paths), study_ready, parent_run_id, i),
            kwargs={"search": search},
        )
        for i in range(1, cfg.sweep.workers)
    ]
    for process in processes:
        process.start()
    return _Helpers(processes, study_ready)


def _run_study(
    settings: Settings,
    cfg: RunConfig,
    feature_paths: dict[str, str],
    parent_run_id: str,
    helpers: _Helpers,
    search: RetrainSearch | None,
) -> SweepOutcome:
    client = tracking.client(settings)
    series = load_series(feature_paths, cfg.features.lookback, cfg.features.horizon, cfg.data.timeframe)
    name = study_name(cfg, series, search)
    study = optuna.create_study(
        study_name=name,
        storage=_storage(settings),
        load_if_exists=True,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=cfg.sweep.seed),
        pruner=_pruner(cfg),
    )
    describe_study(study, cfg)
    if search is not None:
        search.enqueue_incumbent(study)  # before any worker asks: trial 0 is the champion's configuration
        client.log_batch(parent_run_id, params=_params(search.params(cfg)))
    helpers.study_ready.set()
    client.set_tag(parent_run_id, "optuna.study", name)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    resumed = finished_trials(study)
    if resumed:
        SweepReporter(name, cfg).resumed(study)
    try:
        _optimize(settings, cfg, series, study, parent_run_id, 0, search)
        failed = helpers.join()
        if failed:
            raise RuntimeError(f"sweep {name}: {len(failed)} worker process(es) failed (exit codes {failed})")
    except BaseException:
        tracking.finish_run(settings, parent_run_id, failed=True)
        raise
    study = optuna.load_study(study_name=name, storage=_storage(settings))
    states = [t.state for t in study.trials]
    complete = states.count(optuna.trial.TrialState.COMPLETE)
    if complete == 0:
        raise RuntimeError(f"sweep {name}: no trial completed ({len(states)} tried); see the trial runs")
    outcome = SweepOutcome(
        parent_run_id=parent_run_id,
        study_name=name,
        best_params=dict(study.best_trial.user_attrs["hparams"]),
        best_value=float(study.best_value),
        n_complete=complete,
        n_pruned=states.count(optuna.trial.TrialState.PRUNED),
    )
    client.log_batch(parent_run_id, params=_params({f"best.{k}": v for k, v in outcome.best_params.items()}))
    client.log_metric(parent_run_id, f"sweep_best_{objective_name(cfg)}", outcome.best_value)
    client.log_metric(parent_run_id, "sweep_trials_complete", complete)
    client.log_metric(parent_run_id, "sweep_trials_pruned", outcome.n_pruned)
    client.log_metric(parent_run_id, "sweep_trials_resumed", resumed)
    sweep_plots.log_history_plot(client, parent_run_id, study, objective_name(cfg))
    sweep_plots.log_importance_plot(client, parent_run_id, study)
    log.info("sweep %s: best %s %.4f with %s", name, objective_name(cfg), outcome.best_value, outcome.best_params)
    return outcome


#: What each objective is a ratio to: the sweep scores that baseline on the very same windows of each fold.
_REFERENCE = {"rmse_ratio": "the naive random walk's RMSE", "qlike_ratio": "naive volatility's QLIKE"}


def describe_study(study: optuna.Study, cfg: RunConfig) -> None:
    """Name the objective for optuna-dashboard (else "Objective 0") and record naive's score beside it.

    Each fold's objective is the model's score over the naive reference's on that fold's windows, so
    naive itself scores exactly 1.0 on the same folds: the line a trial has to get below.
    """
    metric = objective_name(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # set_metric_names: since 3.2
        study.set_metric_names([metric])
    study.set_user_attr("objective", f"mean {metric} over the sweep's folds: the model's score / {_REFERENCE[metric]}")
    study.set_user_attr(f"naive_{metric}", 1.0)
    study.set_user_attr("beats_naive", f"{metric} below 1.0")


def _worker(
    env: dict[str, str],
    cfg_json: dict,
    feature_paths: dict[str, str],
    study_ready: Any,
    parent_run_id: str,
    worker: int,
    search: RetrainSearch | None = None,
) -> None:
    """A helper process of a parallel sweep: the same study, one torch thread (DEPENDENCIES.md §9).

    It loads its series while the parent creates the study, then waits for it (giving up if the
    parent dies first). The study's name is derived from the same config and data, so it matches.
    """
    os.environ.update(env)
    cfg = RunConfig.model_validate(cfg_json)
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"threads": 1})})
    settings = Settings()
    series = load_series(feature_paths, cfg.features.lookback, cfg.features.horizon, cfg.data.timeframe)
    name = study_name(cfg, series, search)
    parent = mp.parent_process()
    while not study_ready.wait(timeout=5):
        if parent is not None and not parent.is_alive():
            return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=name,
        storage=_storage(settings),
        sampler=optuna.samplers.TPESampler(seed=cfg.sweep.seed + worker),
        pruner=_pruner(cfg),
    )
    _optimize(settings, cfg, series, study, parent_run_id, worker, search)


def _optimize(
    settings: Settings,
    cfg: RunConfig,
    series: list[SeriesArrays],
    study: optuna.Study,
    parent_run_id: str,
    worker: int,
    search: RetrainSearch | None = None,
) -> None:
    if cfg.sweep.workers > 1 and worker == 0:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"threads": 1})})
    if finished_trials(study) >= cfg.sweep.n_trials:
        return
    reporter = SweepReporter(name=study.study_name, cfg=cfg) if worker == 0 else None
    study.optimize(
        _objective(settings, cfg, series, study.study_name, parent_run_id, reporter, search),
        n_trials=cfg.sweep.n_trials,
        timeout=cfg.sweep.timeout_s,
        callbacks=[_budget(cfg), *([reporter.trial_finished] if reporter else [])],
        gc_after_trial=True,
        show_progress_bar=False,  # the CLI shows trial i/n, epoch, best and ETA (sweep_progress listeners)
    )


def _objective(
    settings: Settings,
    cfg: RunConfig,
    series: list[SeriesArrays],
    name: str,
    parent_run_id: str,
    reporter: SweepReporter | None = None,
    search: RetrainSearch | None = None,
):
    client = tracking.client(settings)
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    plan = make_plan(series, cfg)
    search_space = search_space_of(cfg.sweep.model)
    metric = objective_name(cfg)

    def objective(trial: optuna.Trial) -> float:
        if reporter is not None:
            reporter.trial_started(trial.study)
        hparams = search_space(trial)
        if search is not None:  # a retrain also chooses how much of the past to learn from
            hparams[WINDOW_DAYS] = search.suggest_window(trial)
        trial.set_user_attr("hparams", hparams)
        run = client.create_run(
            experiment_id,
            run_name=f"trial-{trial.number}",
            tags={"mlflow.parentRunId": parent_run_id, "optuna.study": name, "optuna.trial": str(trial.number)},
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
                callbacks = [history, EpochProgress(reporter, i), *pruning]
                model = neural_forecaster(
                    cfg, cfg.sweep.model, hparams, max_epochs=cfg.sweep.max_epochs, callbacks=callbacks
                )
                try:
                    ratio = fold_objective(model, series, fold, cfg)
                finally:
                    _log_history(client, run_id, history.history, prefix=f"fold{i}_")
                client.log_metric(run_id, f"fold{i}_{metric}", ratio)
                ratios.append(ratio)
            value = float(np.mean(ratios))
            client.log_metric(run_id, metric, value)
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

    return objective


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
