"""The whole pipeline on a tiny config, on Prefect's local server, with both gate outcomes pinned by the data.

A market with a strong learnable pattern must be promoted (then predicted from, then kept as champion
when a retrain cannot beat it by the policy's margin); a market of pure noise must be refused, with
nothing predicted and the reason recorded. Both use the same explicit gate (GATE): a 2% RMSE gain over
naive with a Diebold-Mariano p-value below 0.05, so only the data differs. The market is served by a
local Binance emulator (``serve_market``) that the config points the real ccxt client at.
"""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from prefect_artifacts import latest_artifact  # tests/flows/ is on sys.path
from typer.testing import CliRunner

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.deployments.cli import app
from candlecast.devtools.synthetic import NO_SIGNAL, STRONG_SIGNAL
from candlecast.features.compute import target_columns
from candlecast.flows.pipeline import pipeline
from candlecast.registry.tracking import RESULT_VIEW
from candlecast.settings import Settings

pytestmark = pytest.mark.slow

HISTORY_DAYS = 60
TINY = {
    "name": "tiny",
    "data": {"symbols": ["BTC/USDT", "ETH/USDT"], "history_days": HISTORY_DAYS},
    "features": {"lookback": 24, "horizon": 6, "vol_window": 12},
    "sweep": {"n_trials": 3, "max_epochs": 2, "pruner_startup_trials": 1},
    "train": {"max_epochs": 2, "batch_size": 128},
}
# The gate of both pinned paths, set here rather than taken from the defaults.
GATE = {"min_gain_vs_naive": 0.02, "max_dm_pvalue": 0.05}
NAIVE_BAR = f"< {1 - GATE['min_gain_vs_naive']:.4f} (naive)"
# A retrain must beat the champion by half its RMSE: impossible on the same data, so the second run's
# refusal is pinned too, and the champion stays.
HOLD_THE_CHAMPION = {"min_gain_vs_champion": 0.5}


def _alias(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def _tiny_config(exchange, promotion: dict | None = None) -> RunConfig:
    """The tiny run config reading from a local emulator, gated by GATE (plus ``promotion``)."""
    endpoint = {"emulator": False, "api_url": exchange.url, "rate_limit": False}
    return RunConfig.model_validate(TINY | {"exchange": endpoint, "promotion": GATE | (promotion or {})})


def _check_ingest(cfg: RunConfig, settings: Settings) -> CandleStore:
    """Every closed candle of the backfill window, validated, stored; staging left empty."""
    store = CandleStore(settings.candles_dir)
    for series in cfg.series:
        candles = store.read(series)
        assert HISTORY_DAYS * 24 - 2 <= len(candles) <= HISTORY_DAYS * 24
        assert candles["timestamp"].diff().dropna().eq(3_600_000).all()
        report = json.loads((settings.validation_dir / f"{series.slug}.json").read_text())
        assert report["success"] and report["n_rows"] == len(candles)
    assert not list(settings.staging_dir.glob("*.parquet")), "validated batches must leave staging"
    return store


def _check_tracking(cfg: RunConfig, client: MlflowClient, run_id: str) -> dict[str, float]:
    """One parent run with a child run per trial, metrics next to naive, plots, lineage; returns its metrics."""
    parent = client.get_run(run_id)
    assert parent.info.status == "FINISHED"
    for key in ("rmse_ratio", "naive_rmse", "test_rmse", "test_mase", "test_directional_accuracy", "test_coverage"):
        assert key in parent.data.metrics
    assert parent.data.tags["mlflow.source.git.commit"]
    assert any(k.endswith(".sha256") for k in parent.data.tags)
    children = client.search_runs([parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    assert len(children) == cfg.sweep.n_trials
    assert {c.data.tags["optuna.state"] for c in children} <= {"COMPLETE", "PRUNED"}
    artifacts = {a.path for a in client.list_artifacts(run_id, "plots")}
    importances = {"plots/param_importances.png"} if parent.data.metrics["sweep_trials_complete"] >= 3 else set()
    assert {"plots/sweep_history.png"} | importances <= artifacts
    assert any(a.startswith("plots/forecast_vs_actual") for a in artifacts), artifacts  # one, or one per series
    return parent.data.metrics


def _check_predictions(cfg: RunConfig, store: CandleStore, predictions, version: str) -> None:
    assert predictions.skipped is None and predictions.model_version == version
    assert len(predictions.files) == len(cfg.series)
    for series, path in zip(cfg.series, predictions.files, strict=True):
        frame = pd.read_parquet(path)
        assert len(frame) == cfg.features.horizon
        assert frame["cutoff"].iloc[0] == store.last_timestamp(series)
        assert (frame["model_version"] == version).all() and (frame["symbol"] == series.symbol).all()
        assert (frame["lower"] <= frame["forecast"]).all() and (frame["forecast"] <= frame["upper"]).all()
        assert frame["timestamp"].iloc[0] == frame["cutoff"].iloc[0] + 3_600_000


def _check_result_view(client: MlflowClient, run_id: str, gate: str) -> None:
    """The experiment's saved runs view shows the gate's verdict and the ratios: columns this run has."""
    run = client.get_run(run_id)
    assert run.data.tags["gate"] == gate
    view = json.loads(client.get_experiment(run.info.experiment_id).tags[f"mlflow.sharedViewState.{RESULT_VIEW}"])
    columns = json.loads(view["state"])["selectedColumns"]
    has = {f"metrics.`{k}`" for k in run.data.metrics} | {f"tags.`{k}`" for k in run.data.tags}
    assert {"tags.`gate`", "metrics.`rmse_ratio`", "metrics.`champion.rmse_ratio`"} <= set(columns) <= has


def test_a_learnable_market_is_promoted_predicted_and_held(home, prefect_server, serve_market):
    settings = Settings()
    cfg = _tiny_config(serve_market(STRONG_SIGNAL, TINY["data"]["symbols"], HISTORY_DAYS), HOLD_THE_CHAMPION)
    first = pipeline(cfg)

    store = _check_ingest(cfg, settings)
    client = MlflowClient(settings.tracking_uri)
    promotion = first["promotion"]
    _check_tracking(cfg, client, promotion.run_id)
    metrics = promotion.metrics  # what the gate saw

    # the gate promoted version 1: it beat naive by the margin, significantly, and there was no champion
    name = cfg.promotion.model_name
    assert promotion.promoted and promotion.version == "1"
    assert metrics["rmse_ratio"] < 1 - GATE["min_gain_vs_naive"] and metrics["dm_pvalue"] < GATE["max_dm_pvalue"]
    assert _alias(client, name, "champion") == _alias(client, name, "challenger") == "1"
    tags = client.get_model_version(name, "1").tags
    assert tags["promotion.decision"] == "promoted"
    assert tags["promotion.reasons"] == "; ".join(promotion.reasons)
    assert NAIVE_BAR in tags["promotion.reasons"]
    assert f"Diebold-Mariano p-value vs naive {metrics['dm_pvalue']:.4f} < 0.05" in tags["promotion.reasons"]
    assert tags["promotion.reasons"].endswith("no champion yet")
    headline = client.get_run(promotion.run_id).info.run_name  # what the MLflow runs table shows
    ratio = f"{metrics['rmse_ratio']:.4f}"
    assert f"{name} v1: promoted to @champion" in latest_artifact("promotion")  # the story in the Prefect UI
    assert ratio in latest_artifact("evaluation") and "| hyperparameter |" in latest_artifact("sweep-best")
    summary = latest_artifact("pipeline-summary")
    assert f"{name} v1: promoted" in summary and ratio in summary
    assert headline.endswith(f" · rmse_ratio {metrics['rmse_ratio']:.4f} · promoted"), headline
    _check_predictions(cfg, store, first["predictions"], "1")

    # the second run, on top of the first: fetches only new candles, registers version 2, compares it
    # with the champion's configuration refitted on v2's own folds, refuses it, and predicts from v1;
    # the evaluation says what it fits, epoch by epoch, the champion's refit included
    from candlecast.registry import eval_progress

    steps: list[eval_progress.EvaluationStep] = []
    with eval_progress.listening(steps.append):
        second = pipeline(cfg)
    assert steps[0].event == "start" and steps[0].model == cfg.sweep.model and "champion" not in steps[0].line()
    fits = [(s.model, s.fold) for s in steps if s.event == "fold"]
    assert len(fits) == steps[0].n_models * steps[0].n_folds and fits[0][0] == cfg.sweep.model
    assert fits[-1][0] == "champion" and any(s.event == "epoch" and s.model == "champion" for s in steps)
    assert all(s.eta_s is not None for s in steps if s.event in ("epoch", "fold"))
    refit = steps[[s.event for s in steps].index("refit") :]
    assert [s.event for s in refit] == ["refit", *["epoch"] * refit[0].max_epochs, "refitted"]
    assert all(s.n_folds == 0 for s in refit[1:-1]), "the refit's epochs say refit, not a fold"
    assert _alias(client, name, "challenger") == "2" and _alias(client, name, "champion") == "1"
    v2 = client.get_model_version(name, "2").tags
    assert "refitted and scored on the same folds" in v2["promotion.compared_with"]
    assert v2["promotion.decision"] == "refused" and "(champion " in v2["promotion.reasons"]
    assert second["promotion"].metrics["champion.version"] == 1.0 and not second["promotion"].promoted
    assert client.get_run(second["promotion"].run_id).info.run_name.endswith(" · refused")
    _check_result_view(client, second["promotion"].run_id, "refused")
    _check_predictions(cfg, store, second["predictions"], "1")

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
    assert all(s["latest_predictions"]["model_version"] == "1" for s in status["series"])
    versions = {v["version"]: v for v in status["models"]["versions"]}
    assert set(versions) == {"1", "2"} and "challenger" in versions["2"]["aliases"]
    assert "champion" in versions["1"]["aliases"]


def test_a_market_of_pure_noise_is_refused_and_nothing_is_predicted(home, prefect_server, serve_market):
    settings = Settings()
    cfg = _tiny_config(serve_market(NO_SIGNAL, TINY["data"]["symbols"], HISTORY_DAYS))
    result = pipeline(cfg)

    _check_ingest(cfg, settings)
    client = MlflowClient(settings.tracking_uri)
    promotion = result["promotion"]
    _check_tracking(cfg, client, promotion.run_id)

    # registered as the challenger, refused by the naive checks, so there is no champion
    name = cfg.promotion.model_name
    assert not promotion.promoted and promotion.version == "1" and promotion.champion is None
    assert _alias(client, name, "challenger") == "1" and _alias(client, name, "champion") is None
    tags = client.get_model_version(name, "1").tags
    assert tags["promotion.decision"] == "refused"
    assert tags["promotion.reasons"] == "; ".join(promotion.reasons)
    vs_naive = next(r for r in promotion.reasons if r.endswith("(naive)"))
    significance = next(r for r in promotion.reasons if r.startswith("Diebold-Mariano p-value vs naive"))
    assert NAIVE_BAR not in vs_naive or f"not < {GATE['max_dm_pvalue']}" in significance, promotion.reasons
    assert (NAIVE_BAR in vs_naive) == (promotion.metrics["rmse_ratio"] < 1 - GATE["min_gain_vs_naive"])

    # predict ran and skipped, saying why; nothing was written
    predictions = result["predictions"]
    assert predictions.model_version is None and predictions.files == []
    assert "no @champion" in predictions.skipped
    assert not list(settings.predictions_dir.rglob("*.parquet"))
