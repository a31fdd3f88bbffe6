"""Scoring task: live error of stored forecasts against the candles that arrived since."""

from __future__ import annotations

from prefect import task

from candlecast.config import RunConfig
from candlecast.registry.scoring import ScoreOutcome, score_forecasts
from candlecast.settings import Settings


@task(name="score")
def score(cfg: RunConfig) -> ScoreOutcome:
    """Score every stored forecast whose outcome has arrived and log live metrics per model version."""
    return score_forecasts(Settings(), cfg)
