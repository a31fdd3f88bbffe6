"""Scoring task: live error of stored forecasts against the candles that arrived since."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact

from candlecast.config import RunConfig
from candlecast.registry.scoring import ScoreOutcome, score_forecasts
from candlecast.settings import Settings


@task(name="score")
def score(cfg: RunConfig) -> ScoreOutcome:
    """Score every stored forecast whose outcome has arrived and log live metrics per model version."""
    outcome = score_forecasts(Settings(), cfg)
    create_markdown_artifact(key="live-score", markdown=_markdown(outcome), description=_summary(outcome))
    return outcome


def _summary(outcome: ScoreOutcome) -> str:
    return f"scored {outcome.scored_rows} forecast rows"


def _markdown(outcome: ScoreOutcome) -> str:
    """What the run scored, per model version: the Prefect UI's answer to "did scoring do anything?"."""
    if not outcome.scored_rows:
        return (
            "# Live score\n\nNo stored forecast has a closed target candle yet: each step is scored once its "
            "candle has closed and been ingested."
        )
    lines = [f"# Live score\n\n{_summary(outcome)}, live metrics logged to each version's MLflow run:\n"]
    for version, metrics in sorted(outcome.by_version.items()):
        lines.append(f"- {version}: " + ", ".join(f"{k} = {v:.4f}" for k, v in metrics.items()))
    return "\n".join(lines)
