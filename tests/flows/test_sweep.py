"""Sweeps on a real Optuna sqlite storage and MLflow store: resumed after a kill, shared by two workers."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import optuna
import pytest

from candlecast.config import RunConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import series_features
from candlecast.io import write_parquet
from candlecast.registry import tracking
from candlecast.registry.sweep import run_sweep, study_name
from candlecast.settings import Settings

pytestmark = pytest.mark.slow

TINY = {
    "name": "sweep-test",
    "features": {"lookback": 16, "horizon": 4, "vol_window": 12},
    "sweep": {"n_trials": 4, "max_epochs": 1, "pruner": "none"},
    "train": {"max_epochs": 1, "batch_size": 128, "threads": 1},
    "backtest": {"baselines": ["naive"]},
}
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _features(settings: Settings, cfg: RunConfig) -> dict[str, str]:
    paths = {}
    for symbol in ("BTC/USDT", "ETH/USDT"):
        candles = synthetic_candles(symbol, 1_704_067_200_000, 1500, seed=5)
        path = settings.features_dir / f"{symbol.replace('/', '-')}.parquet"
        write_parquet(series_features(candles, cfg.features, "1h"), path)
        paths[symbol] = str(path)
    return paths


def _sweep_in_child(env: dict[str, str], cfg_json: dict, paths: dict[str, str], parent: str) -> None:
    os.environ.update(env)
    run_sweep(Settings(), RunConfig.model_validate(cfg_json), paths, parent)


def _study(settings: Settings, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=settings.optuna_url)


def test_a_killed_sweep_resumes_without_losing_completed_trials(home):
    cfg, settings = RunConfig.model_validate(TINY), Settings()
    paths = _features(settings, cfg)
    parent = tracking.start_parent_run(settings, cfg.experiment_name, "first", {})
    child = mp.get_context("spawn").Process(
        target=_sweep_in_child, args=(dict(os.environ), cfg.model_dump(mode="json"), paths, parent)
    )
    child.start()
    from candlecast.features.windows import load_series

    name = study_name(cfg, load_series(paths, 16, 4, "1h"))
    deadline = time.time() + 180
    done_before: dict[int, float] = {}
    while time.time() < deadline and not done_before:
        time.sleep(0.5)
        try:
            done_before = {t.number: t.value for t in _study(settings, name).get_trials(states=FINISHED)}
        except KeyError:  # the study is not created yet
            continue
    assert done_before, "the first sweep finished no trial in time"
    child.kill()  # SIGKILL: no cleanup, a trial may be left RUNNING
    child.join()
    assert 0 < len(done_before) < cfg.sweep.n_trials

    outcome = run_sweep(settings, cfg, paths, tracking.start_parent_run(settings, cfg.experiment_name, "again", {}))
    trials = _study(settings, name).get_trials(states=FINISHED)
    assert outcome.study_name == name
    assert len(trials) == cfg.sweep.n_trials  # only the rest of the budget ran
    assert {t.number: t.value for t in trials if t.number in done_before} == done_before  # nothing lost
    assert outcome.best_value == min(t.value for t in trials)


def test_two_workers_share_one_study_and_record_each_trial_once(home):
    cfg = RunConfig.model_validate(TINY | {"sweep": TINY["sweep"] | {"workers": 2}})
    settings = Settings()
    paths = _features(settings, cfg)
    parent = tracking.start_parent_run(settings, cfg.experiment_name, "parallel", {})
    outcome = run_sweep(settings, cfg, paths, parent)

    study = _study(settings, outcome.study_name)
    trials = study.get_trials(states=FINISHED)
    assert (
        study.metric_names == ["rmse_ratio"] and study.user_attrs["naive_rmse_ratio"] == 1.0
    )  # the dashboard's labels
    # each worker stops once the study holds n_trials; one may finish the trial it had started
    assert cfg.sweep.n_trials <= len(trials) <= cfg.sweep.n_trials + 1
    assert len({t.number for t in trials}) == len(trials)
    client = tracking.client(settings)
    children = client.search_runs(
        [client.get_run(parent).info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )
    recorded = [int(r.data.tags["optuna.trial"]) for r in children if r.data.tags.get("optuna.state") == "COMPLETE"]
    assert sorted(recorded) == sorted(t.number for t in trials)  # one child run per trial, exactly once
    assert outcome.n_complete == len(trials)
