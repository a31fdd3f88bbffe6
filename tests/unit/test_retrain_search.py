"""A retrain's search: the training window it can choose, the champion as its first trial, a study of its own."""

from __future__ import annotations

import optuna
import pytest

from candlecast.config import RunConfig, TrainConfig
from candlecast.forecasting.neural import NeuralForecaster, build_model
from candlecast.forecasting.recency import DAY_MS, WINDOW_DAYS, recent
from candlecast.models import search_space_of
from candlecast.registry.bundle import BundleSpec
from candlecast.registry.retrain_search import incumbent_params, retrain_config, retrain_search, retrain_seed
from candlecast.registry.sweep import study_name
from candlecast.schema import Range
from tests.unit.test_backtest import FC, HOUR, ar1_candles, arrays, folds_of

CHAMPION = {"hidden_size": 32, "num_layers": 2, "dropout": 0.1, "lr": 0.007, "weight_decay": 1e-4}


def test_the_window_keeps_the_newest_days_of_a_training_range_and_nothing_after_it():
    train = Range(0, 100 * DAY_MS)
    assert recent(train, {}) == train and recent(train, {WINDOW_DAYS: None}) == train  # old bundles: all of it
    cut = recent(train, {WINDOW_DAYS: 10})
    assert cut.end == train.end and cut.start == 90 * DAY_MS + 1  # exactly ten days of sample times, same end
    assert recent(train, {WINDOW_DAYS: 1000}) == train
    with pytest.raises(ValueError, match="window_days"):
        recent(train, {WINDOW_DAYS: 0})


def _fit(hparams: dict) -> NeuralForecaster:
    s = arrays(ar1_candles(1600))
    fold = folds_of(s, n=1, n_test=100, n_val=200, n_cal=100)[0]
    model = NeuralForecaster("lstm", hparams, FC.lookback, FC.horizon, TrainConfig(max_epochs=1, threads=1), [0.1, 0.9])
    model.fit([s], fold)
    assert model.result is not None
    return model


def test_a_configuration_with_a_window_fits_only_its_newest_windows_and_one_without_fits_them_all():
    whole = _fit({"hidden_size": 8})
    recent_only = _fit({"hidden_size": 8, WINDOW_DAYS: 20})
    assert whole.result and recent_only.result
    assert recent_only.result.windows.end == whole.result.windows.end  # the same newest window, no look-ahead
    assert recent_only.result.windows.start > whole.result.windows.start
    assert recent_only.result.n_train == 20 * 24  # 20 days of hourly windows
    assert recent_only.result.windows.end - recent_only.result.windows.start == (20 * 24 - 1) * HOUR
    # ... and the refit that ships (or the gate's refit of a champion) keeps the same window
    recent_only.refit([arrays(ar1_candles(1600))], Range(whole.result.windows.start, whole.result.windows.end), 1)
    assert recent_only.result and recent_only.result.n_train == 20 * 24


def test_the_window_is_the_fit_s_setting_so_a_network_builds_with_or_without_it():
    with_window = build_model("lstm", 5, 4, {"hidden_size": 8, WINDOW_DAYS: 30.0})
    without = build_model("lstm", 5, 4, {"hidden_size": 8})
    assert with_window.hparams == without.hparams  # nothing of the window reaches the network


def _spec(hparams: dict, model_name: str = "lstm") -> BundleSpec:
    return BundleSpec(model_name, hparams, {}, "4h", {}, [], [0.1, 0.9], {})


def test_the_champion_s_configuration_is_a_point_of_the_space_or_it_is_not_enqueued():
    params = incumbent_params("lstm", "lstm", CHAMPION)
    assert params == {**CHAMPION, WINDOW_DAYS: None}
    assert incumbent_params("lstm", "lstm", {**CHAMPION, "hidden_size": 8}) is None  # not among the choices
    assert incumbent_params("cnn_lstm", "lstm", CHAMPION) is None  # another model's space
    family = incumbent_params("lstm_family", "lstm_family", {"architecture": "lstm", **CHAMPION, WINDOW_DAYS: 30.0})
    assert family == {"architecture": "lstm", **{f"lstm.{k}": v for k, v in CHAMPION.items()}, WINDOW_DAYS: 30.0}


def test_a_retrain_gets_its_own_seeded_study_whose_first_trial_is_the_champion(tmp_path):
    cfg = RunConfig.model_validate({"sweep": {"model": "lstm", "seed": 3}, "live": {"retrain_trials": 3}})
    retrain = retrain_config(cfg, "4")
    assert retrain.sweep.n_trials == 4 and retrain.sweep.seed == retrain_seed(cfg.promotion.model_name, "4")
    assert retrain_seed(cfg.promotion.model_name, "5") != retrain.sweep.seed
    search = retrain_search(cfg, "4", ("4", _spec({**CHAMPION, WINDOW_DAYS: 45.0})))
    assert search.windows == (None, 15.0, 30.0, 60.0, 45.0)  # the champion's own window is a choice too
    assert retrain_search(cfg, "4", ("5", _spec(CHAMPION))).incumbent is None  # no longer the champion

    series = [arrays(ar1_candles(200))]
    assert study_name(retrain, series, search).startswith(f"{cfg.name}-lstm-retrain-v4-")
    assert study_name(retrain, series, search) != study_name(cfg, series)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    sampler = optuna.samplers.TPESampler(seed=retrain.sweep.seed)
    study = optuna.create_study(study_name="r", storage=url, sampler=sampler)
    assert search.enqueue_incumbent(study)

    def objective(trial: optuna.Trial) -> float:
        hparams = {**search_space_of("lstm")(trial), WINDOW_DAYS: search.suggest_window(trial)}
        trial.set_user_attr("hparams", hparams)
        return hparams["lr"]

    study.optimize(objective, n_trials=retrain.sweep.n_trials)
    first, *others = optuna.load_study(study_name="r", storage=url).trials
    assert first.user_attrs == {"incumbent": "v4", "hparams": {**CHAMPION, WINDOW_DAYS: 45.0}}
    assert len(others) == 3 and all("incumbent" not in t.user_attrs for t in others)
    assert not search.enqueue_incumbent(study)  # a resumed study has its first trial already
