"""Predict flow: return forecasts, and risk forecasts, for every configured series from the @champions."""

from __future__ import annotations

from prefect import flow

from candlecast.config import RunConfig
from candlecast.registry.prediction import PredictionOutcome
from tasks.predict import predict, predict_risk
from tasks.validate import validate_stored


@flow(name="candlecast-predict", log_prints=True)
def predict_flow(config: RunConfig | None = None) -> PredictionOutcome:
    cfg = config or RunConfig()
    for series in cfg.series:
        validate_stored(series, live=True, cfg=cfg)
    predict_risk(cfg)  # volatility and VaR next to the returns, when a risk model holds @champion
    return predict(cfg)
