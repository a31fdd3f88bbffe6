"""optuna-dashboard reads a study's metric names and user attributes from its storage: a real sqlite study."""

from __future__ import annotations

import optuna

from candlecast.config import RunConfig
from candlecast.registry.sweep import describe_study


def _reloaded(tmp_path, cfg: RunConfig) -> optuna.Study:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    describe_study(optuna.create_study(study_name="s", storage=url), cfg)
    return optuna.load_study(study_name="s", storage=url)


def test_the_study_names_its_objective_and_records_naive_on_the_same_folds(tmp_path):
    study = _reloaded(tmp_path, RunConfig())
    assert study.metric_names == ["rmse_ratio"]  # the dashboard's axis and column, not "Objective 0"
    assert study.user_attrs["naive_rmse_ratio"] == 1.0
    assert "naive random walk" in study.user_attrs["objective"]


def test_a_volatility_study_names_qlike_against_naive_volatility(tmp_path):
    study = _reloaded(tmp_path, RunConfig.model_validate({"target": "volatility"}))
    assert study.metric_names == ["qlike_ratio"]
    assert study.user_attrs["naive_qlike_ratio"] == 1.0 and "naive volatility" in study.user_attrs["objective"]
