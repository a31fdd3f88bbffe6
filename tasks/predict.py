"""Prediction tasks: returns, and volatility and VaR, from each model's @champion into the prediction stores."""

from __future__ import annotations

from prefect import task

from candlecast.config import RunConfig
from candlecast.registry.prediction import PredictionOutcome, predict_champion, predict_risk_champion
from candlecast.settings import Settings


@task(name="predict")
def predict(cfg: RunConfig) -> PredictionOutcome:
    return predict_champion(Settings(), cfg)


@task(name="predict-risk")
def predict_risk(cfg: RunConfig) -> PredictionOutcome:
    return predict_risk_champion(Settings(), cfg)
