"""A volatility champion's live error on real candles, against the classical baseline its gate named best.

Stored variance forecasts are scored by QLIKE over that baseline's, refitted causally at each cutoff,
and judged by the drift checks.

No network is trained here: the "champion" is a registered version of a real MLflow store whose run
carries the numbers a volatility run logs (``best_baseline_index``, ``baseline.<name>.qlike``, the run
config), and its forecasts are written to the real risk prediction store. What a trained pooled model
adds end to end is in tests/flows/test_risk_pipeline.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.live import drift
from candlecast.live.baseline import baseline_variances, live_baseline
from candlecast.live.state import read_journal
from candlecast.registry import tracking
from candlecast.registry.prediction import with_lineage
from candlecast.registry.prediction_store import RISK, prediction_store
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

HOUR = 3_600_000
H = 6
SERIES = SeriesKey("binance", "BTC/USDT", "1h")
NAME = "live-risk"


def _candles(shared_data: Path, n: int = 1500) -> pd.DataFrame:
    frame = pd.read_csv(shared_data / "binance" / "binance_BTC-USDT_1h.csv.gz")
    return frame.tail(n).reset_index(drop=True)


def test_realised_variance_is_the_volatility_targets_own(shared_data: Path):
    """The loop's pandas join equals VolatilityTarget.realized (the score flow's), cutoff by cutoff."""
    from candlecast.forecasting.targets.volatility import VOLATILITY

    candles = _candles(shared_data, 300)
    cutoffs = candles["timestamp"].to_numpy("int64")[-40:]  # the last H cannot have matured
    forecasts = pd.DataFrame({"cutoff": cutoffs, "horizon": H, "forecast_variance": 1e-4})
    ours = drift.realized_variances(forecasts, candles, HOUR)
    theirs = VOLATILITY.realized(forecasts, candles, HOUR)
    assert list(ours["cutoff"]) == list(theirs["cutoff"]) == list(cutoffs[: 40 - H])
    np.testing.assert_allclose(ours["realised_variance"], theirs["realised_variance"], rtol=1e-12)


@pytest.mark.parametrize("name", ["ewma", "garch"])
def test_the_baseline_sees_only_candles_up_to_each_cutoff_and_fits_once(shared_data: Path, tmp_path, name):
    settings = Settings(home=tmp_path)
    candles = _candles(shared_data)
    cutoffs = candles["timestamp"].astype("int64").tolist()[-60:-30]
    got = baseline_variances(settings, SERIES, name, H, HOUR, candles, cutoffs)
    assert got.notna().all() and (got > 0).all()
    # the candles after the last cutoff crash tenfold: a causal forecast cannot notice
    later = candles["timestamp"] > cutoffs[-1]
    shocked = candles.assign(close=np.where(later, candles["close"] * np.exp(np.cumsum(later) * 0.1), candles["close"]))
    fresh = baseline_variances(Settings(home=tmp_path / "other"), SERIES, name, H, HOUR, shocked, cutoffs)
    np.testing.assert_allclose(fresh.to_numpy(), got.to_numpy(), rtol=1e-9)
    # each cutoff is fitted once: the cache answers, even for candles it would now forecast differently
    cache = next((tmp_path / "live" / "baselines").glob(f"*_{name}.jsonl"))
    lines = cache.read_text().count("\n")
    again = baseline_variances(settings, SERIES, name, H, HOUR, shocked, cutoffs)
    np.testing.assert_allclose(again.to_numpy(), got.to_numpy())
    assert cache.read_text().count("\n") == lines == len(cutoffs)


def _register(settings: Settings, best: str, qlikes: dict[str, float]) -> str:
    """A registered @champion whose run records what a volatility run logs for the gate; its run id."""
    client = tracking.client(settings)
    experiment = client.create_experiment("live-risk")
    run = client.create_run(experiment).info.run_id
    names = list(qlikes)
    metrics = {"qlike_ratio": 0.9, "best_baseline_index": float(names.index(best))}
    for key, value in (metrics | {f"baseline.{n}.qlike": q for n, q in qlikes.items()}).items():
        client.log_metric(run, key, value)
    cfg = RunConfig.model_validate({"target": "volatility", "backtest": {"risk_baselines": names}})
    client.log_dict(run, cfg.model_dump(mode="json"), "config/run_config.json")
    client.create_registered_model(NAME)
    version = client.create_model_version(NAME, f"runs:/{run}/model", run_id=run).version
    client.set_registered_model_alias(NAME, "champion", version)
    return run


def test_a_volatility_champion_is_scored_against_its_best_baseline_and_degrades_once(shared_data: Path, home: Path):
    """Stored forecasts twice the baseline's variance: QLIKE worse than the baseline's, the guard fires once.

    The gate's best is HAR (not refitted live), so the live reference is the cheap configured baseline
    with the lower backtest QLIKE, GARCH, and the figure and the table say so.
    """
    from candlecast.live.monitor import DEGRADED, Monitor
    from candlecast.tasks.events import journal_only

    settings = Settings()
    candles = _candles(shared_data)
    CandleStore(settings.candles_dir).upsert(SERIES, candles)
    run = _register(settings, "har", {"ewma": 0.50, "garch": 0.45, "har": 0.40})
    assert (
        live_baseline(tracking.client(settings), run, SERIES).label
        == "garch (the gate's best, har, is not refitted live)"
    )
    cfg = RunConfig.model_validate({
        "target": "volatility", "data": {"symbols": [SERIES.symbol]}, "features": {"horizon": H},
        "promotion": {"model_name": NAME},
        "live": {"min_scored": 5, "guard_days": 1.0, "max_model_age_days": None},
    })  # fmt: skip
    cutoffs = candles["timestamp"].astype("int64").tolist()[-80:]
    garch = baseline_variances(settings, SERIES, "garch", H, HOUR, candles, cutoffs)
    store = prediction_store(settings, kind=RISK)

    def forecast(stretch: list[int]) -> None:
        for c in stretch:
            frame = pd.DataFrame(
                {"cutoff": [c], "horizon": H, "timestamp": c + H * HOUR, "forecast_variance": 2 * garch[c]}
            )
            store.write(SERIES, with_lineage(frame, SERIES, NAME, "1", run, "2026-12-04T00:00:00+00:00"))

    client = tracking.client(settings)
    monitor = Monitor(settings, cfg, journal_only)
    forecast(cutoffs[:40])
    monitor.check(SERIES)
    assert len(client.get_metric_history(run, f"live_loss_ratio_{SERIES.slug}")) == 40  # all matured
    forecast(cutoffs[40:])  # the monitor reads only these files now, and scores them with the earlier ones
    found = monitor.check(SERIES)
    assert [a.reason for a in found] == ["guard"]  # twice GARCH's variance: worse than GARCH by QLIKE
    monitor.check(SERIES)
    degraded = [e for e in read_journal(settings) if e["event"] == DEGRADED]
    assert len(degraded) == 1 and degraded[0]["payload"]["version"] == "1"

    history = client.get_metric_history(run, f"live_loss_ratio_{SERIES.slug}")
    assert len(history) == len(cutoffs) - H and all(m.value > 1 for m in history)
    assert f"plots/live_loss_ratio_{SERIES.slug}.png" in {a.path for a in client.list_artifacts(run, "plots")}
    [row] = monitor.table()
    assert row.scored == len(cutoffs) - H and row.reference.startswith("garch")
    logged = np.array([m.value for m in sorted(history, key=lambda m: m.step)])
    assert row.live_ratio == pytest.approx(np.exp(np.log(logged).mean())) and row.live_ratio > 1.2
    assert row.recent_ratio == pytest.approx(np.exp(np.log(logged[-24:]).mean()))  # the guard's day of candles
    assert row.backtest_ratio == pytest.approx(0.9)  # the run's qlike_ratio, as promised at registration
    assert row.alarm.startswith("guard at") and row.alarm.endswith("(retrain asked)")
    assert "loss ratio to garch" in degraded[0]["payload"]["details"][0]

    # a run without the gate's numbers (an old one): one warning, nothing scored, the loop goes on
    bare = client.create_run(client.get_run(run).info.experiment_id).info.run_id
    with pytest.raises(ValueError, match="records no best_baseline_index"):
        live_baseline(client, bare, SERIES)
    forecasts = store.read_all(SERIES).assign(run_id=bare)
    ratios, reference = Monitor(settings, cfg, journal_only).ratios(SERIES, bare, forecasts, candles)
    assert ratios.empty and reference.name == "none"
