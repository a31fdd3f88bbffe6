"""Training tasks: open the tracked run, sweep, evaluate the best configuration, promote it."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from candlecast.config import RunConfig
from candlecast.data import validations as contract
from candlecast.features.windows import data_lineage, load_series
from candlecast.registry import tracking
from candlecast.registry.evaluation import EvaluationOutcome, evaluate_best
from candlecast.registry.promotion import PromotionOutcome, promote
from candlecast.registry.risk_evaluation import evaluate_risk
from candlecast.registry.sweep import SweepOutcome, run_sweep
from candlecast.settings import Settings


def _series(cfg: RunConfig, feature_paths: dict[str, Path]):
    return load_series(feature_paths, cfg.features.lookback, cfg.features.horizon, cfg.data.timeframe)


@task(name="start-run")
def start_run(cfg: RunConfig, feature_paths: dict[str, Path], flow_run_name: str) -> str:
    """Open the pipeline's parent MLflow run, tagged with the feature files' and the contract checks' lineage."""
    tags = data_lineage(feature_paths) | contract.validation_tags(Settings(), cfg.series)
    return tracking.start_parent_run(Settings(), cfg.experiment_name, flow_run_name, tags)


@task(name="sweep")
def sweep(cfg: RunConfig, feature_paths: dict[str, Path], parent_run_id: str) -> SweepOutcome:
    """Run the Optuna sweep, each trial a child run of ``parent_run_id``."""
    return run_sweep(Settings(), cfg, feature_paths, parent_run_id)


@task(name="evaluate")
def evaluate(cfg: RunConfig, feature_paths: dict[str, Path], outcome: SweepOutcome) -> EvaluationOutcome:
    """The walk-forward evaluation and the refit of the target the config forecasts (returns or volatility)."""
    evaluation = evaluate_risk if cfg.target == "volatility" else evaluate_best
    return evaluation(Settings(), cfg, _series(cfg, feature_paths), outcome)


@task(name="promote")
def promote_model(cfg: RunConfig, evaluation: EvaluationOutcome) -> PromotionOutcome:
    """Register the evaluated model as @challenger, move @champion if the gate passes, and close the run."""
    settings = Settings()
    outcome = promote(
        tracking.client(settings), settings, cfg.promotion, evaluation.model_uri, evaluation.run_id, evaluation.metrics
    )
    tracking.finish_run(settings, evaluation.run_id)
    return outcome
