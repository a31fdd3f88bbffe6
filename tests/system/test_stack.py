"""The real server stack on Postgres: Prefect server, MLflow server, a process worker, all on 127.0.0.1.

Deploys with `candlecast deploy`, checks the server's scheduler fills the cron deployments, triggers
ingest -> train -> predict through the Prefect API, checks the registry and prediction store, and runs
one Optuna study from two worker processes on Postgres. Every service is started by
deployments/stack.py, the commands docker/compose.yaml runs too.

The path through the gate is pinned by the data: the exchange is a local emulator serving a market of
pure noise, which no model beats by the gate's 2% margin, so version 1 is refused, predict skips, and
an operator's forced promotion lets predict run from the server's registry.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna_worker import value  # tests/system/ is on sys.path (pytest's rootdir import mode)
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

from candlecast.deployments import stack
from candlecast.deployments.cli import app
from candlecast.deployments.definitions import SPECS
from candlecast.devtools.synthetic import NO_SIGNAL

pytestmark = pytest.mark.system

NAME = "systest"
WORKER = Path(__file__).with_name("optuna_worker.py")
TINY = {
    "name": NAME,
    "data": {"symbols": ["BTC/USDT"], "history_days": 40},
    "features": {"lookback": 24, "horizon": 6, "vol_window": 12},
    "sweep": {"n_trials": 2, "max_epochs": 1, "pruner_startup_trials": 1},
    "train": {"max_epochs": 1, "batch_size": 128},
    "promotion": {"min_gain_vs_naive": 0.02, "max_dm_pvalue": 0.05},
}


def _deployment(key: str) -> str:
    """``<flow>/<deployment>`` as `candlecast deploy` names them: flow candlecast-<key>, title <key>-<config>."""
    return f"candlecast-{key}/{key}-{NAME}"


@pytest.fixture(scope="module")
def running_stack(postgres, tmp_path_factory) -> Iterator[tuple[stack.StackConfig, stack.Backends, Path]]:
    """Prefect + MLflow servers on Postgres; the worker is started by the test once the schedules are checked."""
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
    )
    state = root / "state" / "stack"
    try:
        stack.init_optuna_storage(backends.optuna_url)
        stack.up([s for s in stack.services(cfg, backends) if s.name != "worker"], state, timeout_s=180)
        with temporary_settings({PREFECT_API_URL: cfg.prefect_api_url}):
            yield cfg, backends, state
    finally:
        stack.down(state)


def _cron_matches(cron: str, when: datetime) -> bool:
    """Enough of cron for our schedules: each field is '*' or a number (minute hour day month weekday, 0=Sunday)."""
    fields = (when.minute, when.hour, when.day, when.month, (when.weekday() + 1) % 7)
    return all(f == "*" or int(f) == v for f, v in zip(cron.split(), fields, strict=True))


def _scheduled(client, deployment_id) -> list:
    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        limit=200,  # the sync client sends null without them, which the server refuses
    )


def _wait_for_schedules(client, deployments: dict, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        runs = {key: _scheduled(client, d.id) for key, d in deployments.items()}
        if all(runs.values()) or time.monotonic() > deadline:
            return runs
        time.sleep(2)


def test_stack_on_postgres(running_stack, serve_market, tmp_path):
    cfg, backends, state = running_stack
    exchange = serve_market(NO_SIGNAL, TINY["data"]["symbols"], TINY["data"]["history_days"])
    config_file = tmp_path / "tiny.yaml"
    endpoint = {"emulator": False, "api_url": exchange.url, "rate_limit": False}
    config_file.write_text(yaml.safe_dump(TINY | {"exchange": endpoint}))
    deployed_at = datetime.now(UTC)

    result = CliRunner().invoke(app, ["deploy", "--config", str(config_file), "--pool", cfg.pool])
    assert result.exit_code == 0, result.output

    with get_client(sync_client=True) as client:
        deployments = {s.key: client.read_deployment_by_name(_deployment(s.key)) for s in SPECS}
        assert all(d.work_pool_name == cfg.pool for d in deployments.values())
        assert deployments["train"].global_concurrency_limit.limit == 1  # one training at a time for this config
        assert deployments["train"].concurrency_options.collision_strategy == "ENQUEUE"
        assert client.read_concurrency_limit_by_tag("exchange-api").concurrency_limit == 2

        # the server's scheduler (not the client) fills every cron deployment with future runs in UTC
        crons = {s.key: s.cron for s in SPECS if s.cron}
        scheduled = _wait_for_schedules(client, {k: deployments[k] for k in crons})
        for key, runs in scheduled.items():
            assert runs, f"the scheduler created no runs for {key} ({crons[key]})"
            for run in runs:
                start = run.expected_start_time.astimezone(UTC)
                assert start > deployed_at and _cron_matches(crons[key], start), (key, start)
        hourly = sorted(r.expected_start_time for r in scheduled["ingest"])
        assert hourly[0] - deployed_at <= timedelta(hours=1) and hourly[1] - hourly[0] == timedelta(hours=1)
        assert not _scheduled(client, deployments["pipeline"].id), "the on-demand pipeline has no schedule"

        # keep the cron runs away from the worker: this test triggers its own runs
        for d in deployments.values():
            for schedule in client.read_deployment_schedules(d.id):
                client.update_deployment_schedule(d.id, schedule.id, active=False)
            for run in _scheduled(client, d.id):
                client.delete_flow_run(run.id)

    worker = next(s for s in stack.services(cfg, backends) if s.name == "worker")
    stack.start(worker, state, timeout_s=120)

    runs = {key: run_deployment(_deployment(key), timeout=400) for key in ("ingest", "train", "predict")}
    for key, run in runs.items():
        assert run.state.type == StateType.COMPLETED, f"{key}: {run.state.type} {run.state.message}"

    # the registry of the MLflow server on Postgres; artifacts went through its proxied store
    mlflow = MlflowClient(tracking_uri=cfg.mlflow_url, registry_uri=cfg.mlflow_url)
    model = TINY.get("promotion", {}).get("model_name", "candlecast-lstm")
    version = mlflow.get_model_version(model, "1")
    assert mlflow.get_model_version_by_alias(model, "challenger").version == "1"
    assert mlflow.get_run(version.run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    assert any(Path(cfg.artifacts_dir).rglob("MLmodel")), "the model's files are in the server's artifact store"
    # pure noise: version 1 is the challenger, refused by the naive checks; predict ran and stored nothing
    reasons = version.tags["promotion.reasons"]
    assert version.tags["promotion.decision"] == "refused"
    assert ">= 0.9800 (naive)" in reasons or "vs naive" in reasons and "not < 0.05" in reasons, reasons
    assert "champion" not in mlflow.get_registered_model(model).aliases
    assert not list((backends.home / "predictions").rglob("*.parquet"))
    # an operator's forced promotion (what `candlecast promote --force` does to the alias): predict now serves it
    mlflow.set_registered_model_alias(model, "champion", "1")
    assert run_deployment(_deployment("predict"), timeout=300).state.type == StateType.COMPLETED
    assert list((backends.home / "predictions").rglob("*.parquet"))

    # the train flow's sweep used the Postgres Optuna storage
    studies = optuna.get_all_study_summaries(backends.optuna_url)
    assert [s.n_trials for s in studies if s.study_name.startswith(NAME)] == [TINY["sweep"]["n_trials"]]

    # one study, two worker processes, every trial recorded exactly once
    optuna.create_study(study_name="two-workers", storage=backends.optuna_url, sampler=optuna.samplers.RandomSampler(0))
    n = 15
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), backends.optuna_url, "two-workers", str(n), w])
        for w in ("a", "b")
    ]
    assert [p.wait(timeout=180) for p in procs] == [0, 0]
    trials = optuna.load_study(study_name="two-workers", storage=backends.optuna_url).trials
    assert sorted(t.number for t in trials) == list(range(2 * n))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.user_attrs["worker"] for t in trials) == ["a"] * n + ["b"] * n
    assert all(t.value == value(t.params["x"], t.params["y"]) for t in trials)
