"""The real server stack on Postgres: Prefect server, MLflow server, a process worker, all on 127.0.0.1.

Deploys with `candlecast deploy`, checks the server's scheduler fills the cron deployments, triggers
ingest -> train -> predict, then score and signals, through the Prefect API on a worker whose working
directory is a temp folder of its own (the config's relative exogenous path must not depend on it),
checks the registry, the prediction and decision stores, and runs one Optuna study from two worker
processes on Postgres. Then the live loop's event path (tests/system/live_path.py): `candlecast live`
announces closed candles and the deployments' event triggers forecast each once, and retrain a degraded
champion once, replays included. Every service is started by deployments/stack.py, the commands
docker/compose.yaml runs too.

The stack is started once for the module and each step is a test. Steps never rely on test order:
each state they read is built by a module fixture (deployed -> scheduled -> triggered -> served -> live), which records
what it saw before a later step changes it. The worker and the server's scheduler poll every second
here (Prefect's own settings, passed to the services): the defaults (10 s and 60 s) only add waiting.

The path through the gate is pinned by the data: the exchange is a local emulator serving a market of
pure noise, which no model beats by the gate's 2% margin, so version 1 is refused, predict skips, and
an operator's forced promotion (`candlecast promote --force`) lets predict run from the server's registry.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import live_path  # tests/system/ is on sys.path (pytest's rootdir import mode)
import optuna
import pytest
import yaml
from live_path import HOUR_MS
from mlflow.tracking import MlflowClient
from optuna_worker import value
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    TaskRunFilter,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import ArtifactSort, FlowRunSort
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings
from stack_helpers import cron_matches, descendants, write_daily_index
from typer.testing import CliRunner

from candlecast.deployments import stack
from candlecast.deployments.cli import app
from candlecast.deployments.definitions import SPECS
from candlecast.devtools.synthetic import NO_SIGNAL
from candlecast.live.loop import CANDLES_STORED, FORECAST_STORED
from candlecast.live.monitor import DEGRADED
from candlecast.tasks.live import REFUSED

# the module's first step pays for Postgres, both servers and the deploy; the trigger step for 4 flow runs
pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]

NAME = "systest"
MODEL = "candlecast-lstm"  # the default promotion.model_name
WORKER = Path(__file__).with_name("optuna_worker.py")
REPO = Path(__file__).resolve().parents[2]
TINY = {
    "name": NAME,
    "data": {"symbols": ["BTC/USDT"], "history_days": 40},
    "features": {"lookback": 24, "horizon": 6, "vol_window": 12},
    "sweep": {"n_trials": 2, "max_epochs": 1, "pruner_startup_trials": 1},
    "train": {"max_epochs": 1, "batch_size": 128},
    "promotion": {"min_gain_vs_naive": 0.02, "max_dm_pvalue": 0.05},
    # a triggered retrain fits the champion's own configuration only; the loop reads the moved clock within 0.5 s
    "live": {"retrain_trials": 0, "max_poll_s": 0.5},
}
#: Relative to the config file's folder, as a user writes it: the deployments must carry it resolved.
EXOGENOUS = "exo/fear_greed.csv"
#: Prefect's polling, lowered for the test's services: a run is picked up within a second of its trigger.
FAST_POLLING = {
    "PREFECT_WORKER_QUERY_SECONDS": "1",
    "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
    "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
}
POLL_S = 1.0  # how often run_deployment asks for a triggered run's state (Prefect's default: 5 s)


@dataclass
class Stack:
    """The running services, where they keep state, and the config file the steps deploy."""

    cfg: stack.StackConfig
    backends: stack.Backends
    state: Path
    config_file: Path
    exchange: Any  # the emulator (its clock can be moved on)


def _deployment(key: str) -> str:
    """``<flow>/<deployment>`` as `candlecast deploy` names them: flow candlecast-<key>, title <key>-<config>."""
    return f"candlecast-{key}/{key}-{NAME}"


@pytest.fixture(scope="module")
def running_stack(postgres, tmp_path_factory, serve_market_for_module) -> Iterator[Stack]:
    """Prefect + MLflow servers on Postgres; the worker is started once the schedules are checked."""
    root = tmp_path_factory.mktemp("stack")
    cfg = stack.StackConfig(
        prefect_port=stack.free_port(),
        mlflow_port=stack.free_port(),
        worker_health_port=stack.free_port(),
        dashboard_port=None,
        docs_port=stack.free_port(),
        pool="system-test",
        artifacts_dir=str(root / "mlartifacts"),
    )
    backends = stack.Backends(
        home=root / "state",
        prefect_database=postgres.url("prefect", "asyncpg"),
        mlflow_store=postgres.url("mlflow"),
        optuna_storage=postgres.url("optuna"),
        extra_env=FAST_POLLING,
    )
    exchange = serve_market_for_module(NO_SIGNAL, TINY["data"]["symbols"], TINY["data"]["history_days"])
    config_file = root / "tiny.yaml"
    endpoint = {"emulator": False, "api_url": exchange.url, "rate_limit": False}
    exogenous = {**TINY["features"], "exogenous": [{"path": EXOGENOUS}]}
    config_file.write_text(yaml.safe_dump(TINY | {"exchange": endpoint, "features": exogenous}))
    write_daily_index(root / EXOGENOUS, TINY["data"]["history_days"] + 10)
    state = root / "state" / "stack"
    try:
        stack.init_optuna_storage(backends.optuna_url)
        stack.up([s for s in stack.services(cfg, backends) if s.name != "worker"], state, timeout_s=180)
        with temporary_settings({PREFECT_API_URL: cfg.prefect_api_url}):
            yield Stack(cfg, backends, state, config_file, exchange)
    finally:
        stack.down(state)


@pytest.fixture(scope="module")
def deployed(running_stack: Stack) -> tuple[datetime, dict[str, Any]]:
    """`candlecast deploy` to the stack's pool; returns when it ran and the deployments by spec key."""
    deployed_at = datetime.now(UTC)
    argv = ["deploy", "--config", str(running_stack.config_file), "--pool", running_stack.cfg.pool]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    with get_client(sync_client=True) as client:
        return deployed_at, {s.key: client.read_deployment_by_name(_deployment(s.key)) for s in SPECS}


def _scheduled(client, deployment_id) -> list:
    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        limit=200,  # the sync client sends null without them, which the server refuses
    )


@pytest.fixture(scope="module")
def scheduled(deployed) -> dict[str, list]:
    """The runs the server's scheduler (not the client) created for every deployment, once the cron ones have some."""
    _, deployments = deployed
    crons = {s.key for s in SPECS if s.cron}
    deadline = time.monotonic() + 90
    with get_client(sync_client=True) as client:
        while True:
            runs = {key: _scheduled(client, d.id) for key, d in deployments.items()}
            if all(runs[k] for k in crons) or time.monotonic() > deadline:
                return runs
            time.sleep(1)


@pytest.fixture(scope="module")
def triggered(running_stack: Stack, deployed, scheduled, tmp_path_factory) -> dict[str, Any]:
    """Schedules paused, the worker started in a folder of its own, ingest -> train -> predict triggered.

    Returns the runs, what the registry held then and the worker's working directory (not the repo's,
    not the state folder: a relative path that leaked into a deployment would be looked for there).
    """
    _, deployments = deployed
    with get_client(sync_client=True) as client:
        # keep the cron runs away from the worker: these steps trigger their own runs
        for d in deployments.values():
            for schedule in client.read_deployment_schedules(d.id):
                client.update_deployment_schedule(d.id, schedule.id, active=False)
            for run in _scheduled(client, d.id):
                client.delete_flow_run(run.id)
    worker = next(s for s in stack.services(running_stack.cfg, running_stack.backends) if s.name == "worker")
    worker_cwd = tmp_path_factory.mktemp("worker-cwd")
    with contextlib.chdir(worker_cwd):
        pid = stack.start(worker, running_stack.state, timeout_s=120)
    runs = {
        key: run_deployment(_deployment(key), timeout=400, poll_interval=POLL_S)
        for key in ("ingest", "train", "predict")
    }
    mlflow = MlflowClient(tracking_uri=running_stack.cfg.mlflow_url, registry_uri=running_stack.cfg.mlflow_url)
    return {
        "runs": runs,
        "mlflow": mlflow,
        "aliases": dict(mlflow.get_registered_model(MODEL).aliases),
        "predictions": list((running_stack.backends.home / "predictions").rglob("*.parquet")),
        "worker_cwd": (worker_cwd, Path(f"/proc/{pid}/cwd").resolve()),
    }


@pytest.fixture(scope="module")
def served(running_stack: Stack, triggered) -> dict[str, Any]:
    """An operator's forced promotion (`candlecast promote --force`), then predict, score and signals on the worker."""
    env = {
        "CANDLECAST_HOME": str(running_stack.backends.home),
        "CANDLECAST_MLFLOW_TRACKING_URI": running_stack.cfg.mlflow_url,
    }
    argv = ["promote", "1", "--force", "--config", str(running_stack.config_file)]
    promoted = CliRunner().invoke(app, argv, env=env)
    runs = {
        key: run_deployment(_deployment(key), timeout=300, poll_interval=POLL_S)
        for key in ("predict", "score", "signals")
    }
    with get_client(sync_client=True) as client:
        artifacts = {
            key: {
                a.key
                for a in client.read_artifacts(
                    artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])),
                    # the sync client sends null for each of these without them, which the server refuses
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
                    task_run_filter=TaskRunFilter(),
                    sort=ArtifactSort.CREATED_DESC,
                    limit=50,
                    offset=0,
                )
            }
            for key, run in runs.items()
        }
    return {"promoted": promoted, "runs": runs, "artifacts": artifacts}


@pytest.fixture(scope="module")
def live(running_stack: Stack, deployed, served) -> dict[str, Any]:
    """The event path after the forced promotion: the live loop over two closes, replays, a degraded champion."""
    worker = next(s for s in stack.services(running_stack.cfg, running_stack.backends) if s.name == "worker")
    return live_path.exercise(
        worker.env, running_stack.config_file, running_stack.exchange, deployed[1], running_stack.state / "live.log"
    )


def test_the_mlflow_server_starts_no_job_consumers(running_stack):
    pid = stack.running(running_stack.state, "mlflow")
    assert pid is not None
    assert not [cmd for cmd in descendants(pid) if "huey" in cmd], "MLflow's Huey job consumers were started"


def test_deploy_puts_every_flow_on_the_pool_with_its_limits(running_stack, deployed):
    _, deployments = deployed
    assert all(d.work_pool_name == running_stack.cfg.pool for d in deployments.values())
    # the config's relative path travels resolved against the config file's folder, for a worker anywhere
    exogenous = running_stack.config_file.parent / EXOGENOUS
    assert all(
        d.parameters["config"]["features"]["exogenous"][0]["path"] == str(exogenous) for d in deployments.values()
    )
    assert deployments["train"].global_concurrency_limit.limit == 1  # one training at a time for this config
    assert deployments["train"].concurrency_options.collision_strategy == "ENQUEUE"
    with get_client(sync_client=True) as client:
        assert client.read_concurrency_limit_by_tag("exchange-api").concurrency_limit == 2


def test_the_server_scheduler_fills_every_cron_deployment_in_utc(deployed, scheduled):
    deployed_at, _ = deployed
    crons = {s.key: s.cron for s in SPECS if s.cron}
    for key, cron in crons.items():
        assert scheduled[key], f"the scheduler created no runs for {key} ({cron})"
        for run in scheduled[key]:
            start = run.expected_start_time.astimezone(UTC)
            assert start > deployed_at and cron_matches(cron, start), (key, start)
    hourly = sorted(r.expected_start_time for r in scheduled["ingest"])
    assert hourly[0] - deployed_at <= timedelta(hours=1) and hourly[1] - hourly[0] == timedelta(hours=1)
    assert not scheduled["pipeline"], "the on-demand pipeline has no schedule"


def test_the_worker_runs_ingest_train_and_predict_triggered_through_the_api(triggered):
    for key, run in triggered["runs"].items():
        assert run.state.type == StateType.COMPLETED, f"{key}: {run.state.type} {run.state.message}"
    started_in, running_in = triggered["worker_cwd"]
    assert running_in == started_in.resolve() and REPO not in running_in.parents and running_in != REPO


def test_a_model_of_pure_noise_is_registered_through_the_server_and_refused(running_stack, triggered):
    mlflow = triggered["mlflow"]
    version = mlflow.get_model_version(MODEL, "1")
    assert triggered["aliases"].get("challenger") == "1"
    assert "champion" not in triggered["aliases"], "refused: no @champion, so predict skipped"
    assert mlflow.get_run(version.run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    assert any(Path(running_stack.cfg.artifacts_dir).rglob("MLmodel")), "the model is in the server's artifact store"
    reasons = version.tags["promotion.reasons"]
    assert version.tags["promotion.decision"] == "refused"
    assert ">= 0.9800 (naive)" in reasons or "vs naive" in reasons and "not < 0.05" in reasons, reasons
    assert not triggered["predictions"], "predict ran and stored nothing"


def test_a_forced_promotion_through_the_cli_lets_predict_serve_it(running_stack, triggered, served):
    result = served["promoted"]
    assert result.exit_code == 0, result.output
    assert "promoted to @champion" in result.output
    mlflow = triggered["mlflow"]
    assert mlflow.get_model_version_by_alias(MODEL, "champion").version == "1"
    assert mlflow.get_model_version(MODEL, "1").tags["promotion.forced"] == "true"
    run = served["runs"]["predict"]
    assert run.state.type == StateType.COMPLETED, run.state.message
    assert list((running_stack.backends.home / "predictions").rglob("*.parquet"))


def test_score_and_signals_complete_on_the_worker_and_write_their_output(running_stack, served):
    for key in ("score", "signals"):
        run = served["runs"][key]
        assert run.state.type == StateType.COMPLETED, f"{key}: {run.state.type} {run.state.message}"
    assert {"live-score", f"live-{MODEL}"} <= served["artifacts"]["score"], served["artifacts"]
    assert "signals" in served["artifacts"]["signals"], served["artifacts"]
    assert list((running_stack.backends.home / "signals").rglob("*.parquet")), "signals stored no decisions"


def test_the_train_flow_swept_in_the_postgres_optuna_storage(running_stack, triggered):
    studies = optuna.get_all_study_summaries(running_stack.backends.optuna_url)
    trained = [s for s in studies if s.study_name.startswith(NAME) and "-retrain-" not in s.study_name]
    assert [s.n_trials for s in trained] == [TINY["sweep"]["n_trials"]]  # the live step's retrain has its own


def test_one_study_from_two_worker_processes_records_every_trial_once(running_stack):
    url = running_stack.backends.optuna_url
    optuna.create_study(study_name="two-workers", storage=url, sampler=optuna.samplers.RandomSampler(0))
    n = 15
    procs = [subprocess.Popen([sys.executable, str(WORKER), url, "two-workers", str(n), w]) for w in ("a", "b")]
    assert [p.wait(timeout=180) for p in procs] == [0, 0]
    trials = optuna.load_study(study_name="two-workers", storage=url).trials
    assert sorted(t.number for t in trials) == list(range(2 * n))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.user_attrs["worker"] for t in trials) == ["a"] * n + ["b"] * n
    assert all(t.value == value(t.params["x"], t.params["y"]) for t in trials)


def test_the_loops_event_triggers_one_forecast_per_closed_candle_on_the_worker(live):
    (announced,) = live["candles"]  # the history found at start is recorded, not announced
    first, cutoff = live["start"] + HOUR_MS, live["newest"]  # every candle closed since the loop started
    closes = list(range(first, cutoff + 1, HOUR_MS))
    assert {k: announced["payload"][k] for k in ("symbol", "first", "cutoff")} == {
        "symbol": "BTC/USDT", "first": first, "cutoff": cutoff
    }  # fmt: skip
    run = live["predicted"]
    assert run.state.type == StateType.COMPLETED, run.state.message
    rendered = {k: run.parameters[k] for k in ("symbol", "first", "cutoff")}  # the trigger's templates, as ints
    assert rendered == {"symbol": "BTC/USDT", "first": first, "cutoff": cutoff}
    made = live["forecasts"].groupby("cutoff").agg(rows=("model_version", "size"), v=("model_version", "max"))
    assert made.to_dict("index") == {c: {"rows": TINY["features"]["horizon"], "v": "1"} for c in closes}
    stored = live["events"][FORECAST_STORED]
    assert [e.payload for e in stored] == [{"symbol": "BTC/USDT", "version": "1", "cutoffs": closes}]
    assert [str(e.id) for e in live["events"][CANDLES_STORED]] == [announced["id"]]


def test_replayed_events_store_no_forecast_and_train_nothing_twice(live):
    # the loop sent candles.stored, and the monitor model.degraded, twice each with one event id
    assert [r["id"] for r in live["journal"][CANDLES_STORED]] == [live["candles"][0]["id"]] * 2
    assert len({r["id"] for r in live["journal"][DEGRADED]}) == 1 and len(live["journal"][DEGRADED]) == 2
    # the server kept one of each and its triggers ran one predict and one train
    assert {name: len(events) for name, events in live["events"].items()} == {
        CANDLES_STORED: 1, FORECAST_STORED: 1, DEGRADED: 1
    }  # fmt: skip
    assert [r.id for r in live["runs"]["predict"]] == [live["predicted"].id]
    assert [r.id for r in live["runs"]["train"]] == [live["retrained"].id]
    assert live["after_replay"].equals(live["forecasts"]), "a forecast was rewritten (its created_at changed)"


def test_a_degraded_champion_is_retrained_once_by_the_train_trigger(live):
    run = live["retrained"]
    assert run.state.type == StateType.COMPLETED, run.state.message
    assert run.parameters["retrain_for"] == "1"
    assert live["claim"] == {"run": str(run.id)}, "the triggered run claimed the retrain of v1"
    (degraded,) = live["events"][DEGRADED]
    assert degraded.payload["version"] == "1" and degraded.payload["reasons"] == ["guard"]
    # the gate decided on the retrained v2 (a market of noise: refused), and said so as an event
    outcomes = [(r["event"], r["payload"]["version"]) for r in live["outcomes"] if r["payload"]["retrain_for"] == "1"]
    assert outcomes == [(REFUSED, "2")]
