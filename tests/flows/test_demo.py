"""`make demo` closes the loop on any day: a pinned market, a promotion, a fresh champion, every series forecast."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from candlecast.config import RunConfig
from candlecast.data.fetching import fetch_for_config
from candlecast.settings import Settings
from candlecast.tasks.endpoint import exchange_endpoint

DEMO = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
HOUR = 3_600_000


def _demo(tmp_path: Path) -> RunConfig:
    """The demo config as it ships, with its synthetic sentiment file written inside this test's folder."""
    cfg = RunConfig.from_yaml(DEMO)
    sentiment = tmp_path / "synthetic_fear_greed.csv"
    exchange = cfg.exchange.model_copy(update={"synthetic_sentiment_path": sentiment})
    exogenous = [cfg.features.exogenous[0].model_copy(update={"path": sentiment})]
    return cfg.model_copy(
        update={"exchange": exchange, "features": cfg.features.model_copy(update={"exogenous": exogenous})}
    )


#: A third day, fetched once for the module: the market every parametrised day must equal (no test order).
REFERENCE_DAY = "2026-03-01"


def _fetch_on(today: str, folder: Path) -> tuple[dict[str, pd.DataFrame], bytes]:
    """Fetch the demo config's candles with the wall clock at ``today``: the frames by series slug, the sentiment."""
    fake_now = pd.Timestamp(today, tz="UTC").timestamp()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(time, "time", lambda: fake_now)
        mp.setenv("CANDLECAST_HOME", str(folder / "state"))
        cfg = _demo(folder)
        with exchange_endpoint(cfg) as endpoint:
            fetched = fetch_for_config(Settings(), cfg, endpoint)
    frames = {series.slug: pd.concat([pd.read_parquet(p) for p in fetch.staged]) for series, fetch in fetched.items()}
    return frames, (folder / "synthetic_fear_greed.csv").read_bytes()


@pytest.fixture(scope="module")
def reference_market(tmp_path_factory) -> tuple[dict[str, pd.DataFrame], bytes]:
    return _fetch_on(REFERENCE_DAY, tmp_path_factory.mktemp("reference-day"))


@pytest.mark.parametrize("today", ["2026-11-30", "2027-06-15"])
def test_the_demo_market_is_the_same_on_any_day(today, tmp_path, reference_market):
    """The emulator's history ends at the pinned date whatever the wall clock says."""
    frames, sentiment = _fetch_on(today, tmp_path)
    reference, reference_sentiment = reference_market
    assert sorted(frames) == sorted(reference) and len(frames) == 2
    for slug, frame in frames.items():
        assert frame["timestamp"].iloc[-1] == pd.Timestamp("2025-12-31T23:00Z").value // 10**6, slug
        assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-01-02T00:00Z").value // 10**6  # 730 days back
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), reference[slug].reset_index(drop=True))
    assert sentiment == reference_sentiment


@pytest.mark.slow
@pytest.mark.timeout(900)  # the shipped demo config, trained and promoted for real: minutes on a busy CI machine
def test_the_demo_promotes_a_fresh_champion_and_forecasts_every_series(tmp_path, monkeypatch, prefect_server):
    from candlecast.flows.pipeline import pipeline

    monkeypatch.setenv("CANDLECAST_HOME", str(tmp_path / "state"))
    cfg = _demo(tmp_path)
    result = pipeline(cfg)
    promotion = result["promotion"]
    assert promotion.promoted, promotion.reasons
    assert promotion.metrics["dm_pvalue"] < 0.05 and promotion.metrics["rmse_ratio"] < 0.999
    bundle = mlflow.pyfunc.load_model("models:/candlecast-lstm@champion").unwrap_python_model().forecaster
    spec = bundle.spec
    assert spec.data_cutoff == pd.Timestamp("2025-12-31T23:00Z").value // 10**6
    assert spec.data_cutoff - spec.train_end <= (cfg.features.horizon + 1) * HOUR
    assert any(c.startswith("exo_synthetic_fear_greed") for c in spec.columns)  # the sentiment path is exercised
    predictions = result["predictions"]
    assert predictions.model_version == promotion.version and len(predictions.files) == len(cfg.series)
    for path in predictions.files:
        frame = pd.read_parquet(path)
        assert len(frame) == cfg.features.horizon and frame["cutoff"].iloc[0] == spec.data_cutoff
