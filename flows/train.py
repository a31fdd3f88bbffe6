"""Train flow: features -> tracked sweep -> final fit and test next to naive -> registry promotion."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from candlecast.config import RunConfig
from candlecast.registry.promotion import PromotionOutcome
from candlecast.tasks.features import build_features
from candlecast.tasks.live import announce_outcome, claim
from candlecast.tasks.train import evaluate, plan_retrain, promote_model, start_run, sweep
from candlecast.tasks.validate import validate_features, validate_stored


@flow(name="candlecast-train", log_prints=True)
def train_flow(config: RunConfig | None = None, retrain_for: str | None = None) -> PromotionOutcome | str:
    """Check the stored candles, build and check features, sweep, evaluate next to naive, and gate a promotion.

    ``retrain_for`` (the ``candlecast.model.degraded`` trigger's payload) is the degraded champion
    version: the run trains only if it is still the champion and no run retrained it before (returns why not).
    Its sweep is a study of its own, the champion's configuration first, searching the training window too
    (registry/retrain_search.py); the gate is the same.
    """
    cfg = config or RunConfig()
    search = None
    if retrain_for is not None:
        skip = claim(cfg, retrain_for)
        if skip is not None:
            return skip
        cfg, search = plan_retrain(cfg, retrain_for)
    for series in cfg.series:
        validate_stored(series)
    feature_paths = {series.slug: build_features(cfg, series) for series in cfg.series}
    validate_features(cfg, feature_paths)
    run_id = start_run(cfg, feature_paths, flow_run.get_name() or cfg.name)
    best = sweep(cfg, feature_paths, run_id, search)
    evaluation = evaluate(cfg, feature_paths, best)
    outcome = promote_model(cfg, evaluation)
    announce_outcome(outcome, retrain_for)  # candlecast.model.promoted / .refused, and the gate-decision artifact
    return outcome
