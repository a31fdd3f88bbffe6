"""Score flow: join forecasts with realized candles and log live error per model version to MLflow."""

from __future__ import annotations

from prefect import flow

from candlecast.config import RunConfig
from candlecast.registry.scoring import ScoreOutcome
from candlecast.tasks.score import score


@flow(name="candlecast-score", log_prints=True)
def score_flow(config: RunConfig | None = None) -> ScoreOutcome:
    """Score the stored forecasts against the candles that arrived since."""
    return score(config or RunConfig())
