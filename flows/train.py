"""Train flow: features -> tracked sweep -> final fit and test next to naive -> registry promotion."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from candlecast.config import RunConfig
from candlecast.registry.promotion import PromotionOutcome
from candlecast.tasks.features import build_features
from candlecast.tasks.train import evaluate, promote_model, start_run, sweep
from candlecast.tasks.validate import validate_features, validate_stored


@flow(name="candlecast-train", log_prints=True)
def train_flow(config: RunConfig | None = None) -> PromotionOutcome:
    """Check the stored candles, build and check features, sweep, evaluate next to naive, and gate a promotion."""
    cfg = config or RunConfig()
    for series in cfg.series:
        validate_stored(series)
    feature_paths = {series.slug: build_features(cfg, series) for series in cfg.series}
    validate_features(cfg, feature_paths)
    run_id = start_run(cfg, feature_paths, flow_run.get_name() or cfg.name)
    best = sweep(cfg, feature_paths, run_id)
    evaluation = evaluate(cfg, feature_paths, best)
    return promote_model(cfg, evaluation)
