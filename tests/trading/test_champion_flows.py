"""With a real registered @champion: signals, the Prefect flows and a trade backtest of the registered version.

Signals from the model and from the prediction store must agree, and the trade's MLflow run links back
to the version it traded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.deployments.cli import app
from candlecast.registry import aliases, tracking
from candlecast.registry.loading import load_version
from candlecast.registry.local_registry import SqliteRegistry, alias_version, reader
from candlecast.registry.prediction_store import prediction_store
from candlecast.settings import Settings
from candlecast.trading.config import TradingConfig
from candlecast.trading.portfolio import METHODS
from candlecast.trading.signals import DecisionStore, decisions_dir, run_signals

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

NAME = "trading-lstm"
TINY = {
    "name": "trading",
    "data": {"history_days": 45},
    "features": {"lookback": 24, "horizon": 6, "vol_window": 12},
    "sweep": {"n_trials": 1, "max_epochs": 1},
    "train": {"max_epochs": 1, "batch_size": 128},
    "promotion": {"model_name": NAME},
}


@pytest.fixture(scope="module")
def champion(tmp_path_factory, prefect_server):
    """Ingested candles, a registered @champion (forced if the gate refused it) and its latest predictions."""
    home = tmp_path_factory.mktemp("trading") / "state"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CANDLECAST_HOME", str(home))
        from candlecast.flows.pipeline import pipeline

        cfg = RunConfig.model_validate(TINY)
        result = pipeline(cfg)
        settings = Settings()
        client = tracking.client(settings)
        if not result["promotion"].promoted:
            client.set_registered_model_alias(NAME, "champion", result["promotion"].version)
            from candlecast.flows.predict import predict_flow

            predict_flow(cfg)
        yield cfg, settings, client


def test_signals_from_the_champion_and_from_the_store_agree(champion):
    cfg, settings, client = champion
    fresh = run_signals(settings, cfg, TradingConfig(), source="champion", store=False)
    stored = run_signals(settings, cfg, TradingConfig(), source="store", store=True)
    a, b = fresh.decisions.set_index("symbol"), stored.decisions.set_index("symbol")
    assert sorted(a.index) == sorted(s.symbol for s in cfg.series)
    for col in ("cutoff", "forecast_log_return", "target", "prob_up", "var_1d_95"):
        np.testing.assert_allclose(a[col].astype(float), b.loc[a.index, col].astype(float), rtol=1e-6, atol=1e-12)
    version = aliases.alias_version(client, NAME, "champion")
    assert set(b["model_version"]) == {str(version)}
    assert fresh.weights is not None and list(fresh.portfolio.index) == list(METHODS)
    again = run_signals(settings, cfg, TradingConfig(), source="store", store=True)  # replaces, never duplicates
    assert again.stored == stored.stored
    rows = DecisionStore(decisions_dir(settings)).read(b["policy_id"].iloc[0])
    assert sorted(rows["symbol"]) == sorted(a.index)
    assert rows["run_id"].all() and rows["model_version"].eq(str(version)).all()
    assert fresh.volatility_note.startswith("volatility from the return forecast's interval: no @champion for")


_LOOKUP = """
import sys
from candlecast.registry.loading import load_version
from candlecast.registry.local_registry import alias_version, reader
from candlecast.settings import Settings
client = reader(Settings())
version = alias_version(client, sys.argv[1], "champion")
load_version(client, sys.argv[1], version)
print(version, sorted(m for m in ("mlflow", "sqlalchemy", "alembic", "sklearn", "torch") if m in sys.modules))
"""


def test_the_local_registry_resolves_the_champion_as_mlflow_does(champion, tmp_path, caplog):
    """sqlite3 on MLflow's file gives MlflowClient's version, run, artifacts and forecast; another layout falls back."""
    cfg, settings, client = champion
    local = reader(settings)
    assert isinstance(local, SqliteRegistry)
    for alias in ("champion", "challenger", "no-such-alias"):
        assert alias_version(local, NAME, alias) == aliases.alias_version(client, NAME, alias)
    assert alias_version(local, "no-such-model", "champion") is None
    version = aliases.alias_version(client, NAME, "champion")
    assert local.get_model_version(NAME, version).run_id == client.get_model_version(NAME, version).run_id
    assert local.get_model_version_download_uri(NAME, version) == client.get_model_version_download_uri(NAME, version)
    store = CandleStore(settings.candles_dir)
    frame = pd.concat([store.read(s).tail(300).assign(symbol=s.symbol) for s in cfg.series], ignore_index=True)
    direct, downloaded = load_version(local, NAME, version), load_version(client, NAME, version)
    pd.testing.assert_frame_equal(direct.predict_many(frame), downloaded.predict_many(frame))
    # what predict, signals and the live loop do, in a fresh process: neither MLflow nor its store is imported
    done = subprocess.run([sys.executable, "-c", _LOOKUP, NAME], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [version, "[]"]

    db = tmp_path / "mlflow.db"  # the same registry with a column renamed, as another MLflow might lay it out
    shutil.copy(settings.root / "mlflow.db", db)
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("ALTER TABLE registered_model_aliases RENAME COLUMN alias TO alias_name")
        conn.commit()
    with pytest.MonkeyPatch.context() as mp, caplog.at_level(logging.WARNING, "candlecast.registry.local_registry"):
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
        assert isinstance(reader(Settings()), MlflowClient)
        mp.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # a server: always MLflow's client
        assert isinstance(reader(Settings()), MlflowClient)
    tracking.client(settings)  # MLflow's fluent API back on this module's store (reader pointed it at the others)
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 1 and "\n" not in notes[0] and "alias" in notes[0] and "through MLflow" in notes[0]


def test_a_planted_risk_forecast_sizes_todays_signal(champion):
    """A risk forecast in the risk store at today's cutoff sets the vol_target position and the VaR."""
    from candlecast.registry.prediction_store import RISK, prediction_store

    cfg, settings, _ = champion
    policy = {"name": "vol_target", "target_vol": 0.05, "allow_short": True, "no_trade_band": 0.0}
    tcfg = TradingConfig.parse({"policy": policy})
    plain = run_signals(settings, cfg, tcfg, source="store", store=False).decisions.set_index("symbol")
    risk_store = prediction_store(settings, None, RISK)
    variance = {s.symbol: 4e-4 * (i + 1) for i, s in enumerate(cfg.series)}
    for s in cfg.series:
        row = {"cutoff": int(plain.loc[s.symbol, "cutoff"]), "horizon": 24, "forecast_variance": variance[s.symbol]}
        risk_store.write(s, pd.DataFrame([row | {"model_version": "9", "model_name": "candlecast-risk"}]))
    sized = run_signals(settings, cfg, tcfg, source="store", store=False)
    assert sized.volatility_note == "volatility from the stored risk forecasts"
    out, hold, n = sized.decisions.set_index("symbol"), cfg.features.horizon, len(cfg.series)
    for symbol, v in variance.items():
        sigma = np.sqrt(v * hold / 24)
        annual = sigma * np.sqrt(365.25 * 24 / hold)
        want = np.sign(out.loc[symbol, "forecast_log_return"]) * min(0.05 / (n * annual), 1.0 / n)
        assert out.loc[symbol, "volatility"] == pytest.approx(sigma, rel=1e-9)
        assert out.loc[symbol, "target"] == pytest.approx(want, rel=1e-9)
        var = abs(want) * 1.6448536 * sigma * np.sqrt(24 / hold)  # the one-day VaR reads the same sigma
        assert out.loc[symbol, "var_1d_95"] == pytest.approx(var, rel=1e-6)
    assert not np.allclose(plain["target"], out.loc[plain.index, "target"])


def test_signals_json_for_machines(champion, tmp_path):
    cfg, settings, _ = champion
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    result = CliRunner().invoke(app, ["signals", "--config", str(path), "--json", "--no-store"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{") :])
    assert len(doc["decisions"]) == len(cfg.series)
    assert {"prob_up", "action", "target", "var_1d_95", "model_version"} <= set(doc["decisions"][0])
    assert list(doc["portfolio"]) == list(METHODS)


def test_signals_piped_prints_every_table_whole_at_40_columns(champion, tmp_path):
    """The real program, piped, COLUMNS=40: markdown tables with full symbols and column names (rich cut "BTC/U…")."""
    cfg, settings, _ = champion
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    program = Path(sys.executable).parent / "candlecast"
    env = {**os.environ, "CANDLECAST_HOME": str(settings.root), "COLUMNS": "40"}
    result = subprocess.run(
        [str(program), "signals", "--config", str(path), "--no-store"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "…" not in result.stdout
    lines = result.stdout.splitlines()
    assert "| symbol | last candle | close | forecast | interval | P(up) | action | target | VaR 1d |" in lines
    for series in cfg.series:
        assert any(line.startswith(f"| {series.symbol} | ") for line in lines), series.symbol
    assert "| symbol | inverse_vol | mean_variance | min_variance | risk_parity |" in lines, (
        "the weights: a row a symbol, a column a method"
    )
    assert any(line.startswith("| method | expected_return |") for line in lines)
    assert any(line.startswith("| inverse_vol | ") for line in lines)


def test_the_signals_flow_stores_decisions(champion):
    cfg, _, _ = champion
    from candlecast.flows.trading import signals_flow

    out = signals_flow(cfg)
    assert len(out["decisions"]) == len(cfg.series) and out["stored"]


def _backfill_predictions(cfg: RunConfig, settings: Settings, client, every: int = 6) -> str:
    """Stored forecasts at past cutoffs, as if the scheduled prediction had run for the last 200 candles."""
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").unwrap_python_model().forecaster
    version = aliases.alias_version(client, NAME, "champion")
    run_id = client.get_model_version(NAME, version).run_id
    store, out = CandleStore(settings.candles_dir), prediction_store(settings)
    for series in cfg.series:
        candles = store.read(series)
        for end in range(len(candles) - 200, len(candles) - cfg.features.horizon, every):
            past = candles.iloc[: end + 1].tail(model.spec.min_candles + 1).reset_index(drop=True)
            forecast = model.predict(past).assign(
                symbol=series.symbol, timeframe=series.timeframe, model_name=NAME, model_version=version, run_id=run_id
            )
            out.write(series, forecast.assign(created_at=pd.Timestamp.now(tz="UTC").isoformat()))
    return str(version)


def test_trading_the_registered_version_links_the_mlflow_run_both_ways(champion):
    cfg, settings, client = champion
    version = _backfill_predictions(cfg, settings, client)
    from candlecast.flows.trading import trade_backtest_flow

    out = trade_backtest_flow(cfg, TradingConfig(min_coverage=0.5), source="registered")
    strategies = [row["strategy"] for row in out["table"]]
    assert strategies == [NAME, "naive", "always_long", "buy_and_hold"]
    run = client.get_run(out["mlflow_run_id"])
    assert run.data.tags["candlecast.model_version"] == version
    assert run.data.tags["candlecast.model_name"] == NAME
    assert f"{NAME}.sharpe" in run.data.metrics and "buy_and_hold.total_return" in run.data.metrics
    tags = client.get_model_version(NAME, version).tags
    assert tags["trade_backtest.run_id"] == out["mlflow_run_id"]
    artifacts = {a.path for a in client.list_artifacts(out["mlflow_run_id"], "trade_backtest")}
    logged = {"summary.md", "table.csv", "equity.png", "drawdown.png", "volatility.png"}  # the table and its plots
    assert {f"trade_backtest/{name}" for name in logged} <= artifacts


def test_the_trade_backtest_flow_walks_models_forward_first(champion):
    cfg, _, _ = champion
    from candlecast.flows.trading import trade_backtest_flow

    out = trade_backtest_flow(cfg, TradingConfig(), source="walk-forward", models=["naive", "drift"])
    assert [row["strategy"] for row in out["table"]] == ["naive", "drift", "buy_and_hold"]
    assert out["engine_seconds"] > 0


def test_live_forecasts_each_candle_once_scores_it_and_asks_one_retrain(champion, tmp_path):
    """The event-triggered predict (its trigger's parameters), replayed; then live scoring and the degraded event.

    A SQL prediction store of its own, so the other tests' parquet forecasts stay as they were.
    """
    from candlecast.flows.predict import predict_flow
    from candlecast.live.forecast import stored_cutoffs
    from candlecast.live.monitor import DEGRADED, Monitor
    from candlecast.live.state import read_journal
    from candlecast.tasks.events import journal_only

    cfg, settings, client = champion
    cfg = cfg.model_copy(
        update={
            "predict": cfg.predict.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'live.db'}"}),
            "live": cfg.live.model_copy(update={"min_scored": 5, "guard_ratio": 0.01, "guard_days": 1.0}),
        }
    )
    series = cfg.series[0]
    ts = CandleStore(settings.candles_dir).read(series)["timestamp"].tolist()
    first, cutoff = ts[-40], ts[-1]
    done = predict_flow(cfg, symbol=series.symbol, first=first, cutoff=cutoff)
    assert done.written == ts[-40:] and not done.already
    again = predict_flow(cfg, symbol=series.symbol, first=first, cutoff=cutoff)  # a replayed event
    assert not again.written and again.already == ts[-40:]
    store = prediction_store(settings, cfg.predict.store_url)
    assert stored_cutoffs(store, series, done.model_version) == set(ts[-40:])
    rows = store.read_all(series)
    assert len(rows) == 40 * cfg.features.horizon  # one forecast per cutoff, each stamped with the cutoff it saw
    assert sorted(rows["cutoff"].unique()) == ts[-40:]

    monitor = Monitor(settings, cfg, journal_only)
    alarms = monitor.check(series)  # 40 - horizon matured forecasts; a guard no champion passes
    assert alarms and alarms[0].reason == "guard"
    monitor.check(series)
    degraded = [e for e in read_journal(settings) if e["event"] == DEGRADED]
    assert len(degraded) == 1 and degraded[0]["payload"]["version"] == done.model_version
    run_id = client.get_model_version(NAME, done.model_version).run_id
    history = client.get_metric_history(run_id, f"live_loss_ratio_{series.slug}")
    assert len(history) == 40 - cfg.features.horizon  # each matured forecast logged once, stepped by candle
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}  # the live figure beside the backtest's
    assert {f"plots/live_loss_ratio_{series.slug}.png", f"plots/forecast_vs_actual_{series.slug}.png"} <= plots

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, TaskRunFilter
    from prefect.client.schemas.sorting import ArtifactSort

    from candlecast.flows.score import score_flow

    score_flow(cfg)  # its table artifact, keyed by model: the live error per series and version, run by run
    with get_client(sync_client=True) as prefect:
        [artifact] = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"live-{NAME}"])),
            flow_run_filter=FlowRunFilter(),  # the sync client sends null without these, which the server refuses
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
            offset=0,
        )
    assert artifact.type == "table"
    row = next(r for r in json.loads(str(artifact.data)) if r["series"] == str(series))
    assert row["version"] == done.model_version and row["scored"] == 40 - cfg.features.horizon
    assert row["alarm"].startswith("guard at") and row["alarm"].endswith("(retrain asked)")
    metrics = client.get_run(run_id).data.metrics
    assert row["backtest_ratio"] == pytest.approx(metrics[f"{series.slug}.rmse_ratio"] ** 2, abs=1e-4)

    # the live loop's path for a close: both series' windows in one forward pass, the same forecasts as
    # one series alone; one series that cannot be forecast (no warm-up before its first candle) fails alone
    from candlecast.live.forecast import forecast_many

    other = cfg.series[1]
    its = CandleStore(settings.candles_dir).read(other)
    tail = its["timestamp"].tolist()[-3:]
    together = forecast_many(settings, cfg, {other: (tail[0], tail[-1]), series: (ts[-41], ts[-41])})
    assert together[other].written == tail and together[series].written == [ts[-41]]
    alone = load_version(reader(settings), NAME, done.model_version).predict(its, symbol=other.symbol)
    stored = store.read_all(other).query(f"cutoff == {tail[-1]}").sort_values("step")
    np.testing.assert_allclose(stored["forecast"].to_numpy(), alone["forecast"].to_numpy(), rtol=1e-6)
    first = CandleStore(settings.candles_dir).read(series)["timestamp"].iloc[0]
    apart = forecast_many(settings, cfg, {series: (first, first), other: (its["timestamp"].iloc[-4],) * 2})
    assert series not in apart and apart[other].written == [its["timestamp"].iloc[-4]]
    assert len(store.read_all(other)) == 4 * cfg.features.horizon  # exactly one forecast per candle


_PAPER_CHILD = """
import sys, yaml
from candlecast.config import RunConfig
from candlecast.live.paper import PaperAccount, trading_config
from candlecast.settings import Settings
cfg = RunConfig.model_validate(yaml.safe_load(open(sys.argv[1])))
PaperAccount(Settings(), cfg, cfg.series[0], trading_config(cfg)).advance(int(sys.argv[2]), int(sys.argv[3]))
"""


def test_paper_account_follows_the_champion_and_resumes_after_sigkill(champion, tmp_path):
    """The champion's stored forecasts trade the stored candles one bar at a time; SIGKILL mid-way, resume.

    The ledger then holds every bar once, its fills are those of one trade backtest over the same bars
    and targets (nothing doubled or lost), and each position follows the sign of the forecast before it.
    """
    import signal
    import time

    import httpx
    from prefect.settings import PREFECT_API_URL

    from candlecast.flows.predict import predict_flow
    from candlecast.live.paper import PaperAccount, paper_dir, paper_summary, read_ledger, trading_config
    from candlecast.tasks.paper import ARTIFACT_KEY, publish_summary
    from candlecast.trading.engine import Market, run_engine
    from candlecast.trading.forecasts import TradeWindow

    cfg, settings, _ = champion
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump({"policy": {"name": "sign", "no_trade_band": 0.0}, "hold": 1}))
    cfg = cfg.model_copy(
        update={
            "predict": cfg.predict.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'paper.db'}"}),
            "live": cfg.live.model_copy(update={"paper": True, "paper_trading": str(tmp_path / "paper.yaml")}),
        }
    )
    series = cfg.series[0]
    candles = CandleStore(settings.candles_dir).read(series)
    ts = candles["timestamp"].tolist()
    first, cutoff = ts[-41], ts[-2]  # the newest candle stays untraded: the backtest's last bar needs its open
    done = predict_flow(cfg, symbol=series.symbol, first=first, cutoff=cutoff)
    assert len(done.written) == 40
    store = prediction_store(settings, cfg.predict.store_url)
    rows = store.read_all(series)
    flipped = ts[-41:-1:4]  # an older version's opposite forecasts, stored first: those are the ones traded
    for c in flipped:
        mine = rows[rows["cutoff"] == c].drop(columns=["series"])
        close = mine["forecast"] / np.exp(mine["forecast_log_return"])
        r = -np.sign(mine["forecast_log_return"]) * np.maximum(mine["forecast_log_return"].abs(), 1e-4)
        store.write(series, mine.assign(
            forecast_log_return=r, forecast=close * np.exp(r), lower=close * np.exp(r - 0.01),
            upper=close * np.exp(r + 0.01), model_version="0", created_at="2000-01-01T00:00:00+00:00",
        ))  # fmt: skip

    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    folder = paper_dir(settings) / series.slug
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", _PAPER_CHILD, str(tmp_path / "cfg.yaml"), str(first), str(cutoff)])
    while len(read_ledger(folder)) < 12 and child.poll() is None and time.perf_counter() - started < 120:
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    killed_at = len(read_ledger(folder))
    assert 12 <= killed_at < 40, f"the kill landed after {killed_at} bars"

    account = PaperAccount(settings, cfg, series, trading_config(cfg))  # rebuilds, checks equity and fills
    assert account.replayed <= 1  # from the checkpoint (killed between a line and its checkpoint: that one bar)
    account.advance(first, cutoff)
    account.close()
    ledger = read_ledger(folder)
    assert [r["t"] for r in ledger] == ts[-41:-1]  # every bar once, in order
    assert all(r["cutoff"] == r["t"] for r in ledger)  # each bar's own forecast: no look-ahead
    assert [r["version"] for r in ledger] == ["0" if r["t"] in flipped else done.model_version for r in ledger]
    for before, after in zip(ledger, ledger[1:], strict=False):  # the order at a close fills at the next open
        assert np.sign(after["position"]) == np.sign(before["target"]) == np.sign(before["forecast"]) != 0
    assert len({np.sign(r["position"]) for r in ledger[1:]}) == 2  # long and short, as the forecasts said

    step = ts[1] - ts[0]
    targets = pd.DataFrame(
        {"symbol": series.symbol, "ts": [r["t"] + step for r in ledger], "target": [r["target"] for r in ledger]}
    )
    market = Market(series.timeframe, {series.symbol: candles})
    backtest = run_engine(
        market, TradeWindow(first + step, cutoff + step, 1), trading_config(cfg), targets, max_exposure=1.0
    )
    paper = pd.DataFrame([f for r in ledger for f in r["fills"]])
    expected = backtest.fills[backtest.fills["ts"] < cutoff + step]  # the backtest flattens at its last bar
    assert len(paper) == len(expected) > 2 * len(flipped)
    np.testing.assert_allclose(paper[["ts", "qty", "price", "fee"]], expected[["ts", "qty", "price", "fee"]])

    hold = run_engine(market, TradeWindow(first + step, cutoff + step, 1), trading_config(cfg), hold_target=1.0)
    bought = hold.fills.iloc[0]  # the backtest's buy-and-hold: its buy, on the same venue, is the paper twin's
    assert ledger[1]["hold_fills"] == [pytest.approx(bought[["ts", "qty", "price", "fee"]].to_dict())]
    summary = paper_summary(settings)
    capital = trading_config(cfg).execution.starting_capital
    close = candles.set_index("timestamp")["close"][cutoff]
    assert summary["book"]["fills"] == len(paper)
    assert summary["book"]["pnl"] == pytest.approx(ledger[-1]["equity"] - capital)
    assert summary["book"]["buy_and_hold"] == pytest.approx(bought["qty"] * (close - bought["price"]) - bought["fee"])

    publish_summary(summary)  # what the loop publishes under Prefect
    body = {"artifacts": {"key": {"any_": [ARTIFACT_KEY]}}, "sort": "CREATED_DESC", "limit": 1}
    found = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/filter", json=body, timeout=30).json()
    assert f"| {series} | 40 | 40 | {len(paper)} |" in found[0]["data"]  # (the client's filter sends nulls)
    assert f"| **book** | 40 | | {len(paper)} |" in found[0]["data"]
    status = CliRunner().invoke(app, ["status", "--json"], catch_exceptions=False)
    assert json.loads(status.stdout)["paper"]["series"][0]["fills"] == len(paper)
    table = CliRunner().invoke(app, ["status"], catch_exceptions=False, env={"COLUMNS": "200"}).stdout
    assert "live paper trading since the loop started" in table and f"{summary['book']['pnl']:,.2f}" in table
    assert "| book (1 series) |" in table and "Buy-and-hold: the same capital bought" in table
