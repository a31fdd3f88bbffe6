"""The ingest flow and the import task on Prefect's local server: fetched or imported, gated, stored."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from prefect import flow

from candlecast.config import RunConfig
from candlecast.data import quarantine
from candlecast.data.candle_store import CandleStore
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.flows.ingest import ingest_flow
from candlecast.schema import SeriesKey
from candlecast.settings import Settings
from candlecast.tasks.importing import import_file

START = 1_704_067_200_000

pytestmark = pytest.mark.slow


def test_ingest_flow_backfills_then_is_a_noop(home, prefect_server) -> None:
    cfg = RunConfig.model_validate({"data": {"symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "history_days": 20}})
    first = ingest_flow(cfg)
    assert set(first) == {str(s) for s in cfg.series}
    assert all(20 * 24 - 1 <= n <= 20 * 24 for n in first.values())

    settings = Settings()
    store = CandleStore(settings.candles_dir)
    for series in cfg.series:
        candles = store.read(series)
        assert len(candles) == first[str(series)] and candles["timestamp"].diff().dropna().eq(3_600_000).all()
        assert json.loads((settings.validation_dir / f"{series.slug}.json").read_text())["success"]
    report = json.loads((settings.root / "ingest" / "last.json").read_text())
    assert [r["error"] for r in report] == [None] * 3 and all(r["missing"] == 0 for r in report)
    assert not list(settings.staging_dir.glob("*.parquet"))

    second = ingest_flow(cfg)  # seconds later: at most the candle that closed meanwhile
    assert all(n <= 1 for n in second.values())


def test_import_task_stores_a_clean_file_and_fails_on_a_refused_one(home, prefect_server, tmp_path) -> None:
    series = SeriesKey("binance", "BTC/USDT", "1h")
    candles = synthetic_candles("BTC/USDT", START, 200, timeframe="1h", seed=2)
    clean, broken = tmp_path / "clean.csv", tmp_path / "broken.csv"
    candles.to_csv(clean, index=False)
    candles.assign(high=lambda f: f["high"].where(f.index != 5, f["low"] - 1.0)).to_csv(broken, index=False)

    @flow
    def load(path: Path) -> int:
        return import_file(path, series)

    assert load(clean) == 200
    store = CandleStore(Settings().candles_dir)
    pd.testing.assert_frame_equal(store.read(series), candles)
    refusal = r"(?s)the file broken.csv failed the candle_contract_1h contract.*quarantined as.*on high, low"
    with pytest.raises(Exception, match=refusal) as failure:
        load(broken)
    pd.testing.assert_frame_equal(store.read(series), candles)  # a refused file stores nothing
    (entry,) = quarantine.list_entries(Settings())  # its candles wait in quarantine, as a refused ingest batch's
    assert entry.series == series and entry.rows == 200 and entry.id in str(failure.value)
