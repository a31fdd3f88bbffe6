"""Prediction task: forecasts from models:/<name>@champion into the prediction store."""

from __future__ import annotations

from prefect import task

from candlecast.config import RunConfig
from candlecast.registry.prediction import PredictionOutcome, predict_champion
from candlecast.settings import Settings


@task(name="predict")
def predict(cfg: RunConfig) -> PredictionOutcome:
    return predict_champion(Settings(), cfg)
