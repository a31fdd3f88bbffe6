"""Training tasks: open the tracked run, sweep, evaluate the best configuration, promote it.

Each step publishes what a reader of the Prefect UI wants from it as an artifact (the sweep's best
trial, the evaluation next to naive and the baselines, the gate's decision), so a flow run tells the
whole story without opening MLflow; the MLflow run gets the same headline as its description.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from candlecast.config import RunConfig
from candlecast.data import validations as contract
from candlecast.features.windows import data_lineage, load_series
from candlecast.forecasting.targets import target_of
from candlecast.registry import aliases, tracking
from candlecast.registry.evaluation import EvaluationOutcome, evaluate_best
from candlecast.registry.promotion import PromotionOutcome, promote
from candlecast.registry.retrain_search import RetrainSearch, retrain_config, retrain_search
from candlecast.registry.sweep import SweepOutcome, run_sweep
from candlecast.settings import Settings


def _paths(feature_paths: dict[str, Path]) -> dict[str, str]:
    """The feature files as the core takes them (strings: they also cross to the sweep's worker processes)."""
    return {name: str(path) for name, path in feature_paths.items()}


def _series(cfg: RunConfig, feature_paths: dict[str, Path]):
    return load_series(_paths(feature_paths), cfg.features.lookback, cfg.features.horizon, cfg.data.timeframe)


@task(name="start-run")
def start_run(cfg: RunConfig, feature_paths: dict[str, Path], flow_run_name: str) -> str:
    """Open the pipeline's parent MLflow run, tagged with the feature files' and the contract checks' lineage."""
    tags = data_lineage(_paths(feature_paths)) | contract.validation_tags(Settings(), cfg.series)
    return tracking.start_parent_run(Settings(), cfg.experiment_name, flow_run_name, tags)


@task(name="plan-retrain")
def plan_retrain(cfg: RunConfig, version: str) -> tuple[RunConfig, RetrainSearch]:
    """A retrain of champion ``version``: its config (own seed, more trials) and search (the champion first)."""
    champion = aliases.champion_spec(tracking.client(Settings()), cfg.promotion.model_name)
    return retrain_config(cfg, version), retrain_search(cfg, version, champion)


@task(name="sweep")
def sweep(
    cfg: RunConfig, feature_paths: dict[str, Path], parent_run_id: str, search: RetrainSearch | None = None
) -> SweepOutcome:
    """Run the Optuna sweep, each trial a child run of ``parent_run_id``; its best trial becomes an artifact.

    A retrain's ``search`` (its degraded version, seed and first trial) is recorded on the run by the sweep.
    """
    outcome = run_sweep(Settings(), cfg, _paths(feature_paths), parent_run_id, search)
    params = "\n".join(f"| {k} | {v} |" for k, v in outcome.best_params.items())
    create_markdown_artifact(
        key="sweep-best",
        markdown=(
            f"# Sweep {outcome.study_name}\n\nbest objective (mean ratio to naive over the sweep folds): "
            f"**{outcome.best_value:.4f}**; {outcome.n_complete} trials complete, {outcome.n_pruned} pruned\n\n"
            f"| hyperparameter | best value |\n|---|---|\n{params}\n\nMLflow parent run `{parent_run_id}`"
        ),
        description=f"best trial {outcome.best_value:.4f}",
    )
    return outcome


@task(name="evaluate")
def evaluate(cfg: RunConfig, feature_paths: dict[str, Path], outcome: SweepOutcome) -> EvaluationOutcome:
    """The walk-forward evaluation and the refit of the target the config forecasts (returns or volatility)."""
    result = evaluate_best(Settings(), cfg, _series(cfg, feature_paths), outcome)
    create_table_artifact(
        key="evaluation",
        table=tracking.summary_rows(result.metrics),
        description="the test folds: the model next to naive, the baselines and the current @champion",
    )
    return result


@task(name="promote")
def promote_model(cfg: RunConfig, evaluation: EvaluationOutcome) -> PromotionOutcome:
    """Register the evaluated model as @challenger, move @champion if the gate passes, and close the run."""
    settings = Settings()
    target = target_of(cfg)
    outcome = promote(
        tracking.client(settings),
        settings,
        cfg.promotion,
        target,
        evaluation.model_uri,
        evaluation.run_id,
        evaluation.metrics,
    )
    verdict = "promoted to @champion" if outcome.promoted else "kept as @challenger (the gate refused it)"
    decision = f"{outcome.model_name} v{outcome.version}: {verdict}"
    tracking.log_summary(settings, evaluation.run_id, evaluation.metrics, decision, outcome.reasons, target.gate_metric)
    champion = f"v{outcome.champion}" if outcome.champion else "none"
    reasons = "\n".join(f"- {r}" for r in outcome.reasons)
    create_markdown_artifact(
        key="promotion",
        markdown=f"# {decision}\n\n{reasons}\n\ncurrent @champion: {champion}; MLflow run `{evaluation.run_id}`",
        description=decision,
    )
    tracking.finish_run(settings, evaluation.run_id)
    return outcome
