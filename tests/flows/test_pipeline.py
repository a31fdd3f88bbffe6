"""The whole pipeline on a tiny config, on Prefect's local server, twice: fresh and on top of itself."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.features.compute import target_columns
from candlecast.settings import Settings
from deployments.cli import app
from flows.pipeline import pipeline

pytestmark = pytest.mark.slow

TINY = {
    "name": "tiny",
    "data": {"history_days": 60},
    "features": {"lookback": 24, "horizon": 6, "vol_window": 12},
    "sweep": {"n_trials": 3, "max_epochs": 2, "pruner_startup_trials": 1},
    "train": {"max_epochs": 2, "batch_size": 128},
}


def _alias(client: MlflowClient, name: str, alias: str) -> str:
    return str(client.get_model_version_by_alias(name, alias).version)


def test_pipeline_end_to_end_twice(home, prefect_server):
    cfg = RunConfig.model_validate(TINY)
    settings = Settings()
    first = pipeline(cfg)

    # ingest: every closed candle of the window, validated, stored
    store = CandleStore(settings.candles_dir)
    for series in cfg.series:
        candles = store.read(series)
        assert 60 * 24 - 2 <= len(candles) <= 60 * 24
        assert candles["timestamp"].diff().dropna().eq(3_600_000).all()
        report = json.loads((settings.validation_dir / f"{series.slug}.json").read_text())
        assert report["success"] and report["n_rows"] == len(candles)
    assert not list(settings.staging_dir.glob("*.parquet")), "validated batches must leave staging"

    # tracking: one parent run with one child run per trial, metrics next to naive, plots and the model
    client = MlflowClient(settings.tracking_uri)
    parent = client.get_run(first["promotion"].run_id)
    assert parent.info.status == "FINISHED"
    for key in ("rmse_ratio", "naive_rmse", "test_rmse", "test_mase", "test_directional_accuracy", "test_coverage"):
        assert key in parent.data.metrics
    assert parent.data.tags["mlflow.source.git.commit"]
    assert any(k.endswith(".sha256") for k in parent.data.tags)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{first['promotion'].run_id}'"
    )
    assert len(children) == cfg.sweep.n_trials
    assert {c.data.tags["optuna.state"] for c in children} <= {"COMPLETE", "PRUNED"}
    artifacts = {a.path for a in client.list_artifacts(first["promotion"].run_id, "plots")}
    importances = {"plots/param_importances.png"} if parent.data.metrics["sweep_trials_complete"] >= 3 else set()
    assert artifacts == {"plots/forecast_vs_actual.png", "plots/sweep_history.png"} | importances

    # registry: version 1 is the challenger; champion only if it beat naive, with the reason recorded
    name = cfg.promotion.model_name
    promotion = first["promotion"]
    v1 = client.get_model_version(name, "1")
    assert _alias(client, name, "challenger") == "1"
    assert promotion.promoted == (parent.data.metrics["rmse_ratio"] < 1.0)
    assert v1.tags["promotion.decision"] == ("promoted" if promotion.promoted else "refused")
    assert "naive" in v1.tags["promotion.reasons"]
    if not promotion.promoted:
        assert first["predictions"].skipped and "no @champion" in first["predictions"].skipped
        client.set_registered_model_alias(name, "champion", "1")  # what an operator's forced promotion does

    # the second run, on top of the first: fetches only new candles, registers version 2, predicts
    second = pipeline(cfg)
    assert _alias(client, name, "challenger") == "2"
    # the gate compared v2 with the champion's configuration refitted on v2's own folds
    assert (
        "refitted and scored on the same folds" in client.get_model_version(name, "2").tags["promotion.compared_with"]
    )
    assert second["promotion"].metrics["champion.version"] == 1.0
    champion = _alias(client, name, "champion")
    assert champion in {"1", "2"}
    predictions = second["predictions"]
    assert predictions.model_version == champion and len(predictions.files) == len(cfg.series)
    for series, path in zip(cfg.series, predictions.files, strict=True):
        frame = pd.read_parquet(path)
        assert len(frame) == cfg.features.horizon
        assert frame["cutoff"].iloc[0] == store.last_timestamp(series)
        assert (frame["model_version"] == champion).all() and (frame["symbol"] == series.symbol).all()
        assert (frame["lower"] <= frame["forecast"]).all() and (frame["forecast"] <= frame["upper"]).all()
        assert frame["timestamp"].iloc[0] == frame["cutoff"].iloc[0] + 3_600_000

    # the registered pyfunc takes raw candles of several series at once
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    raw = pd.concat([store.read(s).tail(60).assign(symbol=s.symbol) for s in cfg.series], ignore_index=True)
    out = model.predict(raw)
    assert sorted(out["symbol"].unique()) == sorted(cfg.data.symbols)
    assert len(out) == cfg.features.horizon * len(cfg.series)
    assert len(target_columns(cfg.features.horizon)) == out["step"].max()

    # status --json reports the stores, the validations, the registry and the forecasts
    result = CliRunner().invoke(app, ["status", "--json"], catch_exceptions=False, env={"COLUMNS": "200"})
    status = json.loads(result.stdout)
    assert {s["series"] for s in status["series"]} == {str(s) for s in cfg.series}
    assert all(s["last_validation"]["success"] for s in status["series"])
    assert all(s["latest_predictions"]["model_version"] == champion for s in status["series"])
    versions = {v["version"]: v for v in status["models"]["versions"]}
    assert set(versions) == {"1", "2"} and "challenger" in versions["2"]["aliases"]
    assert "champion" in versions[champion]["aliases"]
