"""A volatility run end to end: the pooled LSTM on realized measures against GARCH, the HAR family and friends.

The network is the pooled variance model (one network for both symbols, a series embedding, residual on
log-HAR). The run registers under its own name, stores risk forecasts for every series next to the
returns, and its shipped bundle's exported graph takes the series id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.flows.pipeline import pipeline
from candlecast.flows.predict import predict_flow
from candlecast.forecasting.runtime import ExportedBundle
from candlecast.registry.loading import load_version
from candlecast.registry.prediction_store import RISK, prediction_store
from candlecast.settings import Settings
from candlecast.trading.risk_source import champion_risk

pytestmark = pytest.mark.slow

TINY_RISK = {
    "name": "tiny-risk",
    "target": "volatility",
    "data": {"history_days": 90},
    "features": {"lookback": 24, "horizon": 6, "vol_window": 12, "realized": ["rv", "yang_zhang", "jump"]},
    "split": {"val_fraction": 0.1, "cal_fraction": 0.1},
    "sweep": {"n_trials": 2, "max_epochs": 2, "pruner_startup_trials": 1},
    "train": {"max_epochs": 2, "batch_size": 128},
    "backtest": {"risk_baselines": ["naive_vol", "ewma", "garch", "har", "har_range", "harq", "har_j"]},
    "multi_series": {"pooled_volatility": "residual"},
}


def test_a_volatility_run_registers_a_risk_model_and_predicts_risk(home, prefect_server):
    cfg = RunConfig.model_validate(TINY_RISK)
    assert cfg.promotion.model_name == "candlecast-risk"
    settings = Settings()
    first = pipeline(cfg)
    promotion = first["promotion"]
    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(promotion.run_id)
    metrics = run.data.metrics
    for key in ("qlike_ratio", "dm_pvalue", "test_qlike", "test_var99_hit_rate", "baseline.garch.qlike"):
        assert key in metrics, key
    best = min(metrics[f"baseline.{b}.qlike"] for b in cfg.backtest.risk_baselines)
    assert metrics["qlike_ratio"] == pytest.approx(metrics["test_qlike"] / best)
    assert run.data.params["target"] == "volatility"
    version = client.get_model_version("candlecast-risk", promotion.version)
    assert version.tags["promotion.decision"] in {"promoted", "refused"}
    assert "the best classical volatility model" in version.tags["promotion.reasons"]
    for series in cfg.series:  # one model for both coins: gated coin by coin, each against its own best baseline
        mine = {b: metrics[f"series.{series.slug}.{k}"] for b, k in (("ratio", "qlike_ratio"), ("p", "dm_pvalue"))}
        assert f"{series.slug}: qlike_ratio {mine['ratio']:.4f}" in version.tags["promotion.reasons"]
        assert 0 <= mine["p"] <= 1
    if not promotion.promoted:  # what an operator's forced promotion does; the gate's verdict is recorded above
        client.set_registered_model_alias("candlecast-risk", "champion", promotion.version)

    shipped = load_version(client, "candlecast-risk", promotion.version)
    assert isinstance(shipped, ExportedBundle)  # the lean runtime's graph, fed the series index with each window
    assert shipped.spec.scaler["id_input"] == "index" and shipped.series_names == sorted(s.slug for s in cfg.series)

    outcome = predict_flow(cfg)
    assert outcome.model_version == promotion.version and len(outcome.files) == len(cfg.series)
    assert not any(prediction_store(settings).read_all(s).shape[0] for s in cfg.series)  # nothing in the returns store
    store = prediction_store(settings, kind=RISK)
    candles = CandleStore(settings.candles_dir)
    for series in cfg.series:
        latest = store.latest(series)
        assert latest is not None and len(latest) == 1
        row = latest.iloc[0]
        assert row["cutoff"] == candles.last_timestamp(series) and row["model_name"] == "candlecast-risk"
        assert row["forecast_volatility"] == pytest.approx(np.sqrt(row["forecast_variance"]))
        assert row["var99_return"] < row["var95_return"] < 0 < row["forecast_volatility"]
        assert row["var99_price"] < row["var95_price"] < candles.read(series)["close"].iloc[-1]
    assert isinstance(store.read_all(cfg.series[0]), pd.DataFrame)

    # signals and the trade backtest of a returns config size from this champion (trading/risk_source): the
    # volatility they read is the one predict stored, from the same candles
    returns_cfg = RunConfig.model_validate({"data": TINY_RISK["data"]})
    risk, origin = champion_risk(settings, returns_cfg, {s.symbol: candles.read(s) for s in cfg.series})
    assert risk is not None and origin == f"candlecast-risk v{promotion.version}"
    for series in cfg.series:
        today = risk[risk["symbol"] == series.symbol].sort_values("cutoff").iloc[-1]
        stored = store.latest(series).iloc[0]
        assert today["cutoff"] == stored["cutoff"]
        assert today["variance"] == pytest.approx(stored["forecast_variance"], rel=1e-6)

    # live: the champion forecasts the last 30 candles as the loop would, each from the candles up to it; the
    # matured ones are scored by QLIKE over the baseline its gate named best on that coin, refitted at each cutoff
    from candlecast.live.baseline import CHEAP
    from candlecast.live.monitor import Monitor
    from candlecast.tasks.events import journal_only

    series = cfg.series[0]
    ts = candles.read(series)["timestamp"].astype("int64").tolist()
    done = predict_flow(cfg, symbol=series.symbol, first=ts[-30], cutoff=ts[-1])
    assert sorted(done.written + done.already) == ts[-30:]
    monitor = Monitor(settings, cfg, journal_only)
    monitor.check(series)
    history = client.get_metric_history(promotion.run_id, f"live_loss_ratio_{series.slug}")
    assert len(history) == 30 - cfg.features.horizon and all(m.value > 0 for m in history)
    [row] = [r for r in monitor.table() if r.series == str(series)]
    best = cfg.backtest.risk_baselines[int(metrics[f"series.{series.slug}.best_baseline_index"])]
    named = f"{best} (the gate's best)" if best in CHEAP else f"(the gate's best, {best}, is not refitted live)"
    assert named in row.reference and row.scored == len(history)
    assert row.backtest_ratio == pytest.approx(metrics[f"series.{series.slug}.qlike_ratio"])
