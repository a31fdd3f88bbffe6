"""The whole mission once: the ingest, train and predict flows as subflows of one run."""

from __future__ import annotations

from typing import Any

from prefect import flow

from candlecast.config import RunConfig
from flows.ingest import ingest_flow
from flows.predict import predict_flow
from flows.train import train_flow


@flow(name="candlecast-pipeline", log_prints=True)
def pipeline(config: RunConfig | None = None) -> dict[str, Any]:
    """Ingest, train and predict once, as subflows of one run."""
    cfg = config or RunConfig()
    stored = ingest_flow(cfg)
    promotion = train_flow(cfg)
    predictions = predict_flow(cfg)
    return {"stored": stored, "promotion": promotion, "predictions": predictions}
