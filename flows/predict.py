"""Predict flow: forecasts for every configured series from the registry's @champion."""

from __future__ import annotations

from prefect import flow

from candlecast.config import RunConfig
from candlecast.registry.prediction import PredictionOutcome
from tasks.predict import predict
from tasks.validate import validate_stored


@flow(name="candlecast-predict", log_prints=True)
def predict_flow(config: RunConfig | None = None) -> PredictionOutcome:
    cfg = config or RunConfig()
    for series in cfg.series:
        validate_stored(series, live=True)
    return predict(cfg)
