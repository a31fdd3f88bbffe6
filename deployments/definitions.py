"""The Prefect deployments of candlecast: one spec per flow, turned into deployments for one run config.

Schedules are cron in UTC, registered as the Interval with the same runs (``schedule``). Each
deployment carries the whole run config as its ``config`` parameter (a JSON object validated against
RunConfig's schema), so a worker on another machine needs no config file and the Prefect UI renders
the config as a form. Adding a flow is one line in ``SPECS``.
"""

from __future__ import annotations

import importlib
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from candlecast.configfile import relative_paths

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment
    from prefect.schedules import Schedule

    from candlecast.config import RunConfig

# Task tag of every exchange request (tasks/ingest.py `fetch`): a tag limit on it is a global concurrency limit.
EXCHANGE_TAG = "exchange-api"
DEFAULT_EXCHANGE_LIMIT = 2
DEFAULT_POOL = "candlecast"


@dataclass(frozen=True)
class DeploymentSpec:
    """What to deploy for one flow; ``flow`` is "module:attribute" so the CLI imports flows only when needed."""

    key: str
    flow: str
    cron: str | None
    description: str
    retries: int = 0
    retry_delay_s: int = 0
    max_running: int | None = None

    def load(self) -> Flow:
        """Import the flow (only when a deployment is built: the CLI stays quick to start)."""
        module, attr = self.flow.split(":")
        return getattr(importlib.import_module(module), attr)

    def retry_env(self) -> dict[str, str]:
        """Flow retries as settings, for workers that import the flow from its module (not from this spec)."""
        return {
            "PREFECT_FLOWS_DEFAULT_RETRIES": str(self.retries),
            "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS": str(self.retry_delay_s),
        }


SPECS: tuple[DeploymentSpec, ...] = (
    # Candles close on the hour: ingest two minutes after, predict once ingest has had time to finish.
    DeploymentSpec(
        "ingest",
        "candlecast.flows.ingest:ingest_flow",
        "2 * * * *",
        "Hourly at :02 UTC: fetch the candles that closed, gate them with the candle contract, store them.",
        retries=2,
        retry_delay_s=120,
    ),
    DeploymentSpec(
        "predict",
        "candlecast.flows.predict:predict_flow",
        "15 * * * *",
        "Hourly at :15 UTC, after ingest: forecasts from models:/<name>@champion into the prediction store.",
        retries=2,
        retry_delay_s=60,
    ),
    # A failed sweep needs a look, not a blind rerun; one training at a time per series set (= per config).
    DeploymentSpec(
        "train",
        "candlecast.flows.train:train_flow",
        "0 3 * * 0",
        "Weekly, Sunday 03:00 UTC: features, Optuna sweep, evaluation next to naive, registry promotion.",
        max_running=1,
    ),
    DeploymentSpec(
        "score",
        "candlecast.flows.score:score_flow",
        "30 0 * * *",
        "Daily at 00:30 UTC: join forecasts with the candles that arrived, live error per model version.",
        retries=1,
        retry_delay_s=300,
    ),
    DeploymentSpec(
        "pipeline",
        "candlecast.flows.pipeline:pipeline",
        None,
        "On demand: ingest, train and predict once, as subflows of one run.",
        max_running=1,
    ),
    # After predict (:15): decisions from the forecasts just stored; a backtest on NautilusTrader on demand.
    DeploymentSpec(
        "signals",
        "candlecast.flows.trading:signals_flow",
        "20 * * * *",
        "Hourly at :20 UTC, after predict: forecast -> policy -> action, target and VaR per symbol, stored.",
        retries=1,
        retry_delay_s=60,
    ),
    DeploymentSpec(
        "trade-backtest",
        "candlecast.flows.trading:trade_backtest_flow",
        None,
        "On demand: out-of-sample forecasts traded on NautilusTrader next to buy-and-hold, logged to MLflow.",
        max_running=1,
    ),
)


def spec(key: str) -> DeploymentSpec:
    """The spec of one deployment key; a ValueError lists the known keys."""
    try:
        return next(s for s in SPECS if s.key == key)
    except StopIteration:
        raise ValueError(f"no deployment {key!r}; known: {[s.key for s in SPECS]}") from None


def deployment_title(s: DeploymentSpec, cfg: RunConfig) -> str:
    """``<what it does>-<config name>``, e.g. ``ingest-demo`` for config ``candlecast-demo``: the UI's title.

    The UI lists deployments by this name in large type (the flow's name, ``candlecast-ingest``, is
    small grey text), so one set per config would otherwise be rows of identical titles; the config's
    ``candlecast-`` prefix is dropped, as the flow's name already says it, so the title fits its column.
    """
    return f"{s.key}-{cfg.name.removeprefix('candlecast-')}"


_WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")  # cron's 0..6
_A_SUNDAY = datetime(2026, 1, 4, tzinfo=UTC)


def schedule(cron: str) -> Schedule:
    """A UTC cron of SPECS as the Interval with the same runs, its slug saying when in words.

    The Prefect UI's deployment list shows a schedule as a tag that must fit its column: a cron's text
    ("At 02 minutes past the hour") overflows to "+1"; an interval's ("Hourly", "Daily", "Every 7
    days") fits, and the slug ("hourly at :02 UTC") heads the schedule on the deployment's page.
    Supported: a fixed minute of every hour, of every day at a fixed hour, or of one weekday.
    """
    from prefect.schedules import Interval

    minute, hour, day, month, weekday = cron.split()
    if day != "*" or month != "*" or (hour == "*" and weekday != "*"):
        raise ValueError(f"cron {cron!r}: only hourly, daily or weekly schedules have an equal interval")
    m = int(minute)
    if hour == "*":
        every, anchor, slug = timedelta(hours=1), _A_SUNDAY.replace(minute=m), f"hourly at :{m:02d} UTC"
    elif weekday == "*":
        every, anchor = timedelta(days=1), _A_SUNDAY.replace(hour=int(hour), minute=m)
        slug = f"daily at {anchor:%H:%M} UTC"
    else:
        every = timedelta(days=7)
        anchor = _A_SUNDAY.replace(hour=int(hour), minute=m) + timedelta(days=int(weekday))
        slug = f"weekly, {_WEEKDAYS[int(weekday)]} {anchor:%H:%M} UTC"
    return Interval(every, anchor_date=anchor, timezone="UTC", slug=slug)


def deployment_name(s: DeploymentSpec, cfg: RunConfig) -> str:
    """``<flow name>/<deployment title>``: what `prefect deployment run` and ``run_deployment`` take."""
    return f"{s.load().name}/{deployment_title(s, cfg)}"


def config_parameters(cfg: RunConfig) -> dict[str, Any]:
    """The deployments' parameters: the whole run config as JSON, so a worker needs no config file.

    Its paths must be absolute: a worker runs each flow in a temporary folder, where a relative path
    names nothing. ``RunConfig.from_yaml`` resolves them; a config built in code must too.
    """
    relative = relative_paths(cfg)
    if relative:
        raise ValueError(
            f"config {cfg.name!r} has relative paths ({', '.join(relative)}), which a worker would look for in its "
            "temporary folder: load it with RunConfig.from_yaml (or `--config FILE`), which makes them absolute"
        )
    return {"config": cfg.model_dump(mode="json")}


def build(
    cfg: RunConfig, work_pool: str | None = None, specs: tuple[DeploymentSpec, ...] = SPECS
) -> list[RunnerDeployment]:
    """Runner deployments for ``cfg``: served in-process when ``work_pool`` is None, else for a pool's workers.

    Entrypoints are module paths (``flows.ingest.ingest_flow``), so any worker with candlecast installed
    runs them (the local venv, the Docker image, a Kubernetes pod) without a checkout or pull step.
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.types.entrypoint import EntrypointType

    from candlecast.deployments.triggers import event_triggers

    deployments = []
    for s in specs:
        flow = s.load().with_options(retries=s.retries, retry_delay_seconds=s.retry_delay_s)
        limit = (
            ConcurrencyLimitConfig(limit=s.max_running, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)
            if s.max_running
            else None
        )
        deployments.append(
            sync_result(
                flow.to_deployment(
                    name=deployment_title(s, cfg),
                    schedules=[schedule(s.cron)] if s.cron else [],
                    triggers=event_triggers(s.key, cfg),
                    parameters=config_parameters(cfg),
                    concurrency_limit=limit,
                    description=s.description,
                    tags=["candlecast", s.key],
                    work_pool_name=work_pool,
                    job_variables={"env": s.retry_env()} if work_pool else None,
                    entrypoint_type=EntrypointType.MODULE_PATH,
                )
            )
        )
    return deployments


T = TypeVar("T")


def sync_result(value: T | Coroutine[Any, Any, T]) -> T:
    """The value of a Prefect call that dispatches on the event loop (``to_deployment``, ``apply``).

    Inside a running loop those calls return a coroutine instead of their value; ours are sync code,
    so one would be a deployment silently never made: refuse it loudly instead.
    """
    if isinstance(value, Coroutine):
        value.close()
        raise RuntimeError("Prefect returned a coroutine: build and register deployments from synchronous code")
    return value
