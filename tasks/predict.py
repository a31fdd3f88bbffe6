"""Prediction tasks: returns, and volatility and VaR, from each model's @champion into the prediction stores."""

from __future__ import annotations

from prefect import task

from candlecast.config import RunConfig
from candlecast.registry.batch_prediction import predict_chunk
from candlecast.registry.prediction import PredictionOutcome, predict_risk_champion
from candlecast.settings import Settings


@task(name="predict-chunk")
def predict_symbols(cfg: RunConfig, symbols: list[str]) -> PredictionOutcome:
    """A chunk of symbols in one forward pass of the champion (``predict_many`` of the bundle, in the lean runtime)."""
    return predict_chunk(Settings(), cfg, symbols)


@task(name="predict-risk")
def predict_risk(cfg: RunConfig) -> PredictionOutcome:
    """Volatility and VaR from the risk model's @champion, beside the return forecasts."""
    return predict_risk_champion(Settings(), cfg)
