"""Event triggers of the deployments: stages joined by events, not clocks.

- predict runs for one series when ``candlecast.candles.stored`` names it (the payload's symbol and
  ``first``..``cutoff`` become its parameters; the config stays the deployment's own).
- train runs when ``candlecast.model.degraded`` names this config's model (``retrain_for`` = the
  degraded champion version; the train flow claims it once, so a replayed event trains nothing twice).

A runner picks a triggered run up at its next poll: ``PREFECT_RUNNER_POLL_FREQUENCY`` (serve) or
``PREFECT_WORKER_QUERY_SECONDS`` (a worker) default to 10 s; docs/live.md says what the loop sets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from candlecast.live.loop import CANDLES_STORED, series_resource
from candlecast.live.monitor import DEGRADED, model_resource

if TYPE_CHECKING:
    from prefect.events import DeploymentTriggerTypes, TriggerTypes

    from candlecast.config import RunConfig


def event_triggers(key: str, cfg: RunConfig) -> list[DeploymentTriggerTypes | TriggerTypes]:
    """The triggers of deployment ``key`` for ``cfg`` (none for the scheduled-only ones)."""
    from prefect.events import DeploymentEventTrigger

    if key == "predict":
        return [
            DeploymentEventTrigger(
                name=f"predict on {CANDLES_STORED}",
                expect={CANDLES_STORED},
                match={"prefect.resource.id": [series_resource(s) for s in cfg.series]},
                parameters={
                    "symbol": "{{ event.payload.symbol }}",
                    "first": "{{ event.payload.first }}",
                    "cutoff": "{{ event.payload.cutoff }}",
                },
            )
        ]
    if key == "train":
        return [
            DeploymentEventTrigger(
                name=f"retrain on {DEGRADED}",
                expect={DEGRADED},
                match={"prefect.resource.id": model_resource(cfg.promotion.model_name)},
                parameters={"retrain_for": "{{ event.payload.version }}"},
            )
        ]
    return []
