"""Predict flow: forecasts for every configured series from the registry's @champion."""

from __future__ import annotations

from prefect import flow

from candlecast.config import RunConfig
from candlecast.prediction import PredictionOutcome
from tasks.predict import predict


@flow(name="candlecast-predict", log_prints=True)
def predict_flow(config: RunConfig | None = None) -> PredictionOutcome:
    return predict(config or RunConfig())
