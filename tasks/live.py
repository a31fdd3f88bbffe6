"""The live loop's Prefect side: events out (``emit_event``), the event-driven predict, retrain claim and outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect import task
from prefect.artifacts import create_markdown_artifact

from candlecast.config import RunConfig
from candlecast.live.forecast import SeriesForecasts, forecast_cutoffs
from candlecast.live.loop import FORECAST_STORED, series_resource
from candlecast.live.monitor import model_resource
from candlecast.live.state import retrain_refusal
from candlecast.registry import tracking
from candlecast.registry.prediction import champion_version
from candlecast.schema import SeriesKey
from candlecast.settings import Settings
from candlecast.tasks.events import emit

if TYPE_CHECKING:
    from candlecast.registry.promotion import PromotionOutcome

PROMOTED, REFUSED = "candlecast.model.promoted", "candlecast.model.refused"


@task(name="predict-series", task_run_name="predict-{symbol}")
def predict_series(cfg: RunConfig, symbol: str, first: int, cutoff: int) -> SeriesForecasts:
    """One forecast per candle of ``symbol`` in ``first..cutoff`` (from what each saw), then ``forecast.stored``."""
    series = SeriesKey(cfg.exchange.id, symbol, cfg.data.timeframe)
    done = forecast_cutoffs(Settings(), cfg, series, int(first), int(cutoff))
    if done.written:
        payload = {"symbol": symbol, "version": done.model_version, "cutoffs": done.written}
        emit(
            FORECAST_STORED,
            series_resource(series),
            payload,
            f"forecast:{series}:{done.model_version}:{first}:{cutoff}",
        )
    return done


@task(name="claim-retrain")
def claim(cfg: RunConfig, version: str) -> str | None:
    """None when this run is the one retrain of champion ``version``; else why it is skipped."""
    from prefect.runtime import flow_run

    name = cfg.promotion.model_name
    current = champion_version(tracking.client(Settings()), name)
    return retrain_refusal(Settings(), name, version, current, str(flow_run.get_id()))


@task(name="announce-outcome")
def announce_outcome(outcome: PromotionOutcome, retrain_for: str | None) -> None:
    """``candlecast.model.promoted`` or ``.refused`` with the gate's reasons, and the same as an artifact."""
    event = PROMOTED if outcome.promoted else REFUSED
    payload = {
        "version": outcome.version, "champion": outcome.champion, "retrain_for": retrain_for,
        "reasons": list(outcome.reasons),
    }  # fmt: skip
    emit(event, model_resource(outcome.model_name), payload, f"outcome:{outcome.model_name}:{outcome.version}")
    verdict = "promoted to @champion" if outcome.promoted else "refused"
    lines = [f"# {outcome.model_name} v{outcome.version}: {verdict}", ""]
    if retrain_for:
        lines.append(f"Retrained because v{retrain_for} degraded (`candlecast.model.degraded`).\n")
    lines += [f"- {r}" for r in outcome.reasons]
    create_markdown_artifact(
        key="gate-decision", markdown="\n".join(lines), description=f"v{outcome.version} {verdict}"
    )
