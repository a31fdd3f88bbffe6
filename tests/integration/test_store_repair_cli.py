"""`candlecast store repair` end to end through the CLI, with the gate writing results and Data Docs (slow)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from candlecast.data.candle_store import CandleStore
from candlecast.deployments.cli import app
from candlecast.devtools.emulator import ExchangeEmulator
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

HOUR = 3_600_000
START = 1_704_067_200_000 - 48 * HOUR  # 2023-12-30: three year files, 2023, 2024 and 2025
KEY = SeriesKey("binance", "BTC/USDT", "1h")
HOURS_2024 = 366 * 24


@pytest.fixture
def source() -> pd.DataFrame:
    return synthetic_candles("BTC/USDT", START, 24 * 400, seed=8)


@pytest.fixture
def store(home: Path, source: pd.DataFrame) -> CandleStore:
    store = CandleStore(Settings().candles_dir)
    store.upsert(KEY, source.iloc[:-1])
    return store


@pytest.fixture
def exchange(source: pd.DataFrame) -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator({("BTC/USDT", "1h"): source}) as emulator:
        yield emulator


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def _truncate(store: CandleStore, name: str = "2024.parquet") -> None:
    path = store.series_dir(KEY) / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_cli_store_repair_then_validate_passes(store: CandleStore, source: pd.DataFrame, exchange) -> None:
    _truncate(store)
    repaired = _cli("store", "repair", str(KEY), "--api-url", exchange.url, "--no-rate-limit")
    assert repaired.exit_code == 0, repaired.output
    assert "set aside 2024.parquet" in repaired.output and f"2024.parquet: {HOURS_2024} stored" in repaired.output
    pd.testing.assert_frame_equal(store.read(KEY), source.iloc[:-1].reset_index(drop=True))
    assert _cli("validate", "--series", str(KEY)).exit_code == 0
    assert "nothing to repair" in _cli("store", "repair", str(KEY), "--api-url", exchange.url).output
