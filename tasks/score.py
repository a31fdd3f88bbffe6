"""Scoring task: live error of stored forecasts against the candles that arrived since."""

from __future__ import annotations

import re

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from candlecast.config import RunConfig
from candlecast.live.monitor import Monitor
from candlecast.live.report import markdown
from candlecast.registry.scoring import ScoreOutcome, score_forecasts
from candlecast.settings import Settings
from candlecast.tasks.events import journal_only


@task(name="score")
def score(cfg: RunConfig) -> ScoreOutcome:
    """Score every stored forecast whose outcome has arrived and log live metrics per model version.

    Two artifacts: ``live-score`` (the metrics logged per version) and ``live-<model>``, the table of each
    series and version's live loss ratio next to its backtest's and the drift checks' state; one key per
    model, so the Prefect UI's artifact page shows its history run by run.
    """
    settings = Settings()
    outcome = score_forecasts(settings, cfg)
    create_markdown_artifact(key="live-score", markdown=_markdown(outcome), description=_summary(outcome))
    rows = Monitor(settings, cfg, journal_only).table()  # judges only: never emits, logs nothing
    name = cfg.promotion.model_name
    create_table_artifact(
        key=artifact_key(name), table=[r.row() for r in rows] or _empty(name), description=markdown(name, rows)
    )
    return outcome


def artifact_key(model_name: str) -> str:
    """``live-<model name>`` in the characters an artifact key allows (lowercase letters, digits, dashes)."""
    return "live-" + re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")


def _empty(model_name: str) -> list[dict[str, str]]:
    return [{"series": "", "alarm": f"no matured forecast of {model_name} scored yet"}]


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
