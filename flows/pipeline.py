"""The whole mission in one flow: candles -> contract -> features -> sweep -> evaluate -> promote -> predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from candlecast.config import RunConfig
from tasks.features import build_features
from tasks.ingest import fetch_candles, store_batch, validate_batch
from tasks.predict import predict
from tasks.train import evaluate, promote_model, start_run, sweep


@flow(name="candlecast-pipeline", log_prints=True)
def pipeline(config: RunConfig | None = None) -> dict[str, Any]:
    cfg = config or RunConfig()
    feature_paths: dict[str, Path] = {}
    for series in cfg.series:
        staged = fetch_candles(cfg, series)
        if staged is not None:
            validate_batch(series, staged)
            store_batch(series, staged)
        feature_paths[series.slug] = build_features(cfg, series)

    run_id = start_run(cfg, feature_paths, flow_run.get_name() or cfg.name)
    best = sweep(cfg, feature_paths, run_id)
    evaluation = evaluate(cfg, feature_paths, best)
    promotion = promote_model(cfg, evaluation)
    forecasts = predict(cfg)
    return {"run_id": run_id, "sweep": best, "evaluation": evaluation, "promotion": promotion, "predictions": forecasts}
