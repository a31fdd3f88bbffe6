"""The live loop's event path on the stack (tests/system/test_stack.py): candles -> event -> triggered run.

`candlecast live --predict-by-deployment` runs as a process against the stack's emulator, whose clock
the test moves two hours on: the loop stores the two closed candles and announces them as one
``candlecast.candles.stored``; the predict deployment's trigger runs on the worker. Right after, the
loop's own ``announce`` re-sends the same range (what the loop does when killed between the event and
its record), and the monitor's ``_degrade`` emits ``candlecast.model.degraded`` twice (the second as
after a kill before the record is marked): each replay carries the first one's event id. The
retrain triggered for @champion v1 runs beside the predict run.

The Prefect server drops an event id its trigger service has seen (an in-memory cache of the last
30 minutes), so these replays start no run; a replay the server has not seen (after its restart) is
left to the consumers' own keys (stored forecasts per cutoff and version, the retrain claim).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter
from prefect.events.worker import EventsWorker

from candlecast.config import RunConfig
from candlecast.live.drift import Alarm
from candlecast.live.loop import CANDLES_STORED, FORECAST_STORED, LiveLoop
from candlecast.live.monitor import DEGRADED, Monitor
from candlecast.live.state import read_journal, retrain_path, retrain_record, series_state, write_retrain_record
from candlecast.registry.prediction_store import ParquetPredictionStore
from candlecast.schema import SeriesKey, timeframe_ms
from candlecast.settings import Settings
from candlecast.tasks.events import emit
from candlecast.tasks.live import PROMOTED, REFUSED

HOUR_MS = 3_600_000


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, every_s: float = 0.5) -> Any:
    """``check()`` once it returns something truthy; fails naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(every_s)
    return found


def follow_two_closes(
    env: dict[str, str], config_file: Path, exchange: Any, series: SeriesKey, log: Path
) -> tuple[int, int]:
    """Run `candlecast live` while the exchange's clock moves two candles on; the newest stored at start, and announced.

    Two or more: a candle that closes on the wall clock meanwhile is announced in the same batch.
    """
    settings, step = Settings(home=Path(env["CANDLECAST_HOME"])), timeframe_ms(series.timeframe)
    argv = [sys.executable, "-m", "candlecast.deployments.cli", "live", "--config", str(config_file)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv + ["--predict-by-deployment"], env={**os.environ, **env}, stdout=out, stderr=out)
    try:
        # first followed: the loop records the history it found as announced without announcing it
        start = wait_for("the loop's first step", lambda: series_state(settings, series).get("announced"), 90)
        exchange.advance(2 * step)
        newest = wait_for(
            "the loop's announcement of the two closes",
            lambda: (a := series_state(settings, series).get("announced", 0)) >= start + 2 * step and a,
            60,
        )
    finally:
        proc.terminate()  # SIGTERM: the loop stops after the step in hand
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert rc == 0, log.read_text(errors="replace")[-3000:]
    return int(start), int(newest)


def announced(home: Path, event: str) -> list[dict[str, Any]]:
    """The journal's records of ``event`` (every process on the stack's state folder appends to it)."""
    return [r for r in read_journal(Settings(home=home)) if r["event"] == event]


def new_runs(deployment_id: Any, before: set[Any]) -> list[FlowRun]:
    """Runs of the deployment not in ``before``, oldest first."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
        )
    return [r for r in runs if r.id not in before]


def run_ids(deployment_id: Any) -> set[Any]:
    return {r.id for r in new_runs(deployment_id, set())}


def final(deployment_id: Any, before: set[Any], timeout_s: float) -> FlowRun:
    """The one new run of the deployment, once it is final."""

    def done() -> FlowRun | None:
        runs = new_runs(deployment_id, before)
        return runs[0] if runs and runs[0].state and runs[0].state.is_final() else None

    return wait_for("a triggered run", done, timeout_s)


def server_events(since: Any, *names: str) -> dict[str, list[Any]]:
    """The events of these names the Prefect server stored since ``since`` (``/api/events/filter``), by name."""
    flt = EventFilter(occurred=EventOccurredFilter(since=since), event=EventNameFilter(name=list(names)))
    with get_client(sync_client=True) as client:
        found = client.read_events(filter=flt, limit=50).events
    return {name: [e for e in found if e.event == name] for name in names}


def replay_announce(cfg: RunConfig, series: SeriesKey, first: int, cutoff: int) -> None:
    """The loop's ``announce`` of a range it announced before (a kill before its record): the same event id."""
    loop = LiveLoop(Settings(), cfg, gate_at=lambda now: None, emit=emit)  # announce neither fetches nor gates
    loop.announce(series, first, cutoff)
    EventsWorker.drain_all(timeout=30)


def degrade_twice(cfg: RunConfig, series: SeriesKey, version: str) -> Path:
    """The monitor's ``_degrade`` for ``version``, then again as after a kill before it marked the record.

    Returns the claim file's path, which the triggered train run writes.
    """
    settings, name = Settings(), cfg.promotion.model_name
    monitor = Monitor(settings, cfg, emit)
    alarm = Alarm("guard", at=series_state(settings, series)["announced"], detail="planted by tests/system")
    monitor._degrade(name, version, series, [alarm])
    EventsWorker.drain_all(timeout=30)
    write_retrain_record(settings, name, version, retrain_record(settings, name, version) | {"emitted": False})
    monitor._degrade(name, version, series, [alarm])
    EventsWorker.drain_all(timeout=30)
    return retrain_path(settings, name, version).with_suffix(".claimed")


def exercise(
    env: dict[str, str], config_file: Path, exchange: Any, deployments: dict[str, Any], log: Path
) -> dict[str, Any]:
    """Each step of the module docstring on the stack; returns what each left, read before the next changed it."""
    home, cfg = Path(env["CANDLECAST_HOME"]), RunConfig.model_validate(deployments["predict"].parameters["config"])
    (series,) = cfg.series
    ids = {key: deployments[key].id for key in ("predict", "train")}
    before, since = {key: run_ids(i) for key, i in ids.items()}, datetime.now(UTC)
    store = ParquetPredictionStore(home / "predictions")
    start, newest = follow_two_closes(env, config_file, exchange, series, log)
    out: dict[str, Any] = {"start": start, "newest": newest, "candles": announced(home, CANDLES_STORED)}
    with pytest.MonkeyPatch.context() as patch:  # this process as the loop on the stack's state folder
        patch.setenv("CANDLECAST_HOME", str(home))
        patch.setenv("CANDLECAST_MLFLOW_TRACKING_URI", env["CANDLECAST_MLFLOW_TRACKING_URI"])
        payload = out["candles"][-1]["payload"]
        replay_announce(cfg, series, payload["first"], payload["cutoff"])  # as if killed right after its event
        claim = degrade_twice(cfg, series, "1")  # the retrain runs beside the predict run, as on the live stack
    out["predicted"] = final(ids["predict"], before["predict"], 120)
    out["forecasts"] = store.read_all(series).query(f"cutoff > {start}")
    # the replayed candles.stored went before model.degraded: the server's triggers had seen it when train started
    out["retrained"] = final(ids["train"], before["train"], 240)
    names = (CANDLES_STORED, FORECAST_STORED, DEGRADED)
    events = wait_for("the events on the server", lambda: all((e := server_events(since, *names)).values()) and e, 30)
    return out | {
        "after_replay": store.read_all(series).query(f"cutoff > {start}"),
        "runs": {key: new_runs(i, before[key]) for key, i in ids.items()},
        "claim": json.loads(claim.read_text()) if claim.exists() else None,
        "events": events,
        "journal": {name: announced(home, name) for name in names},
        "outcomes": announced(home, PROMOTED) + announced(home, REFUSED),
    }
