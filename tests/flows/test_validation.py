"""The contract in the flows: a malformed batch is quarantined and the store kept; runs link their checks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from prefect import flow
from prefect_artifacts import latest_artifact  # tests/flows/ is on sys.path
from typer.testing import CliRunner

from candlecast.config import RunConfig
from candlecast.data import quarantine
from candlecast.data.candle_store import CandleStore
from candlecast.deployments.cli import app
from candlecast.devtools.emulator import ExchangeEmulator
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import build_feature_file
from candlecast.flows.ingest import ingest_flow
from candlecast.schema import SeriesKey
from candlecast.settings import Settings
from candlecast.tasks.train import start_run
from candlecast.tasks.validate import validate_features, validate_stored

SERIES = SeriesKey("binance", "BTC/USDT", "1h")
START, HOUR = 1_704_067_200_000, 3_600_000


def _files(root: Path) -> dict[str, bytes]:
    """Every data and manifest file of a series folder, byte for byte (the lock file aside)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != ".lock"}


def test_ingest_quarantines_a_malformed_batch_and_keeps_the_store(home: Path, prefect_server: None) -> None:
    settings = Settings()
    candles = synthetic_candles("BTC/USDT", START, 100, timeframe="1h", seed=3)
    store = CandleStore(settings.candles_dir)
    store.upsert(SERIES, candles.iloc[:60])
    before = _files(store.series_dir(SERIES))
    served = candles.copy()  # the exchange keeps serving malformed rows: every refetch gets them again
    served.loc[70, ["high", "low"]] = served.loc[70, ["low", "high"]].to_numpy()
    served.loc[80, "close"] = -served.loc[80, "close"]
    last = int(served["timestamp"].iloc[-1])

    healthy = synthetic_candles("ETH/USDT", START, 100, timeframe="1h", seed=4)
    feeds = {("BTC/USDT", "1h"): served, ("ETH/USDT", "1h"): healthy}
    with ExchangeEmulator(feeds, now_ms=last + HOUR) as emulator:
        cfg = RunConfig.model_validate(
            {
                "exchange": {"emulator": False, "api_url": emulator.url, "rate_limit": False},
                "data": {"symbols": ["BTC/USDT", "ETH/USDT"], "history_days": 5000},  # back past START
            }
        )
        with pytest.raises(Exception, match="failed the candle_contract_1h_live contract") as failure:
            ingest_flow(cfg)

    message = str(failure.value)
    for expectation in ("expect_column_pair_values_a_to_be_greater_than_b", "expect_column_values_to_be_between"):
        assert expectation in message
    assert f"timestamp={served.loc[80, 'timestamp']}" in message  # an offending row, shown whole
    assert _files(store.series_dir(SERIES)) == before  # the store is exactly as it was
    # the other series is stored all the same: one bad feed does not hold the rest back
    pd.testing.assert_frame_equal(store.read(SeriesKey("binance", "ETH/USDT", "1h")), healthy)
    assert "1 of 2 series were not fully ingested" in message
    (entry,) = quarantine.list_entries(settings)
    assert entry.id in message
    pd.testing.assert_frame_equal(quarantine.read_batch(entry), served.iloc[60:].reset_index(drop=True))
    assert not list(settings.staging_dir.glob("*.parquet"))
    markdown = latest_artifact("validation-binance-btc-usdt-1h")
    assert "# Candle batch binance:BTC/USDT:1h: FAILED" in markdown
    assert (
        "Data Docs: [file://" in markdown
        and "| critical | expect_column_pair_values_a_to_be_greater_than_b |" in markdown
    )
    assert Path(entry.report["data_docs"].removeprefix("file://")).exists()

    # the user fixes the two rows and releases the batch: now the store has every candle
    fixed_csv = home.parent / "fixed.csv"
    candles.iloc[60:].to_csv(fixed_csv, index=False)
    released = CliRunner().invoke(app, ["quarantine", "release", entry.id, "--file", str(fixed_csv)])
    assert released.exit_code == 0, released.output
    pd.testing.assert_frame_equal(store.read(SERIES), candles)


def test_training_run_links_the_checks_of_its_data(home: Path, prefect_server: None) -> None:
    settings = Settings()
    cfg = RunConfig.model_validate({"data": {"symbols": ["BTC/USDT"]}, "features": {"horizon": 6}})
    CandleStore(settings.candles_dir).upsert(SERIES, synthetic_candles("BTC/USDT", START, 400, seed=5))

    @flow
    def checks() -> dict[str, Path]:
        validate_stored(SERIES)
        paths = {SERIES.slug: build_feature_file(settings, cfg, SERIES)}
        validate_features(cfg, paths)
        return paths

    paths = checks()
    run_id = start_run.fn(cfg, paths, "validation-lineage")

    tags = MlflowClient(settings.tracking_uri).get_run(run_id).data.tags
    prefix = f"validation.{SERIES.slug}"
    assert tags[f"{prefix}.status"] == "passed"
    assert tags[f"{prefix}.suite"] == "candle_contract_1h"
    assert Path(tags[f"{prefix}.result"]).exists()
    assert Path(tags[f"{prefix}.data_docs"].removeprefix("file://")).exists()
    assert "passed" in latest_artifact(f"validation-features-{SERIES.slug.lower().replace('_', '-')}")


def test_training_refuses_broken_stored_candles(home: Path, prefect_server: None) -> None:
    candles = synthetic_candles("BTC/USDT", START, 100, seed=5)
    candles.loc[10, "volume"] = -1.0  # written around the gate (e.g. by hand)
    CandleStore(Settings().candles_dir).upsert(SERIES, candles)

    @flow
    def check() -> None:
        validate_stored(SERIES)

    with pytest.raises(Exception, match="the stored candles failed the candle_contract_1h contract"):
        check()
