"""A corrupt partition: named with its repair, set aside and refetched from the exchange; a series removed whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from candlecast.data.candle_store import CandleStore
from candlecast.data.exchange import RetryPolicy
from candlecast.data.ingest import ingest
from candlecast.data.maintenance import corrupt_dir, pending_repairs, remove_series, repair_series
from candlecast.deployments.cli import app
from candlecast.devtools.emulator import ExchangeEmulator
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.expectations.gate import candle_gate
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

HOUR = 3_600_000
START = 1_704_067_200_000 - 48 * HOUR  # 2023-12-30: three year files, 2023, 2024 and 2025
KEY = SeriesKey("binance", "BTC/USDT", "1h")
OTHER = SeriesKey("binance", "ETH/USDT", "1h")
HOURS_2024 = 366 * 24


@pytest.fixture
def source() -> pd.DataFrame:
    return synthetic_candles("BTC/USDT", START, 24 * 400, seed=8)


@pytest.fixture
def store(home: Path, source: pd.DataFrame) -> CandleStore:
    """BTC stored over three years (all closed candles of the source), ETH beside it."""
    store = CandleStore(Settings().candles_dir)
    store.upsert(KEY, source.iloc[:-1])
    store.upsert(OTHER, synthetic_candles("ETH/USDT", START, 100, seed=8))
    return store


@pytest.fixture
def exchange(source: pd.DataFrame) -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator({("BTC/USDT", "1h"): source}) as emulator:  # its newest candle is still forming
        yield emulator


def _truncate(store: CandleStore, name: str = "2024.parquet") -> tuple[Path, bytes]:
    path = store.series_dir(KEY) / name
    data = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(data)
    return path, data


def _options(emu: ExchangeEmulator) -> dict:
    return {"api_url": emu.url, "rate_limit": False, "now_ms": emu.now_ms, "timeout_ms": 1_000}


def test_repair_sets_a_middle_year_aside_and_refetches_exactly_its_candles(
    store: CandleStore, source: pd.DataFrame, exchange: ExchangeEmulator
) -> None:
    settings = Settings()
    path, truncated = _truncate(store)

    outcome = repair_series(settings, KEY, candle_gate(), **_options(exchange))

    assert outcome.repaired and [n.file for n in outcome.set_aside] == ["2024.parquet"]
    assert outcome.refetched == {"2024.parquet": HOURS_2024}  # the range the manifest recorded, no more
    pd.testing.assert_frame_equal(store.read(KEY), source.iloc[:-1].reset_index(drop=True))
    assert store.manifest(KEY)["missing"] == 0 and store.corrupt_files(KEY) == []
    assert not list(corrupt_dir(settings, KEY).iterdir())  # the unreadable bytes go once their candles are back
    assert len(store.read(OTHER)) == 100
    assert repair_series(settings, KEY, candle_gate(), **_options(exchange)).refetched == {}  # nothing left to do


@pytest.mark.slow  # waits out the retries
def test_an_unreachable_exchange_leaves_the_rest_readable_and_a_second_repair_finishes(
    store: CandleStore, source: pd.DataFrame, exchange: ExchangeEmulator
) -> None:
    settings = Settings()
    path, truncated = _truncate(store)
    options = _options(exchange)
    exchange.stop()

    outcome = repair_series(settings, KEY, candle_gate(), **options | {"policy": RetryPolicy(max_retries=1)})

    assert not outcome.repaired and "2024.parquet" in outcome.pending
    (note,) = pending_repairs(settings, KEY)
    assert Path(note.kept_at).read_bytes() == truncated  # kept, not deleted, until the candles are back
    readable = store.read(KEY)  # the other two years, with 2024 as a gap
    assert len(readable) == len(source) - 1 - HOURS_2024
    assert store.manifest(KEY)["missing"] == HOURS_2024

    with ExchangeEmulator({("BTC/USDT", "1h"): source}) as again:
        retried = repair_series(settings, KEY, candle_gate(), **_options(again))
    assert retried.repaired and retried.refetched == {"2024.parquet": HOURS_2024}
    pd.testing.assert_frame_equal(store.read(KEY), source.iloc[:-1].reset_index(drop=True))
    assert pending_repairs(settings, KEY) == []


def test_remove_series_takes_the_whole_series_and_its_record_and_nothing_else(store: CandleStore) -> None:
    settings = Settings()
    record = settings.validation_dir / f"{KEY.slug}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("{}")
    _truncate(store)  # a corrupt series can be removed too

    removed = remove_series(settings, KEY)

    assert removed.files == 3 and removed.rows == 24 * 400 - 1
    assert not store.series_dir(KEY).exists() and not record.exists()
    assert store.list_series() == [OTHER] and len(store.read(OTHER)) == 100
    assert not list((settings.root / ".trash").iterdir())
    with pytest.raises(ValueError, match="nothing stored for binance:BTC/USDT:1h"):
        remove_series(settings, KEY)


def _cli(*args: str, input: str | None = None):  # noqa: A002 (click's name)
    return CliRunner().invoke(app, list(args), input=input)


def test_cli_validate_and_export_name_the_corrupt_file_with_exit_code_3(store: CandleStore, tmp_path: Path) -> None:
    path, _ = _truncate(store)
    for result in (_cli("validate", "--series", str(KEY)), _cli("export", str(tmp_path / "o.csv"), "-e", "binance",
                                                                 "-s", "BTC/USDT", "-t", "1h")):  # fmt: skip
        assert result.exit_code == 3, result.output
        (line,) = result.output.strip().splitlines()  # one line, no traceback
        assert str(path) in line and "magic bytes" in line and f"candlecast store repair {KEY}" in line


def test_cli_store_rm_asks_first(store: CandleStore) -> None:
    declined = _cli("store", "rm", str(KEY), input="n\n")
    assert declined.exit_code == 1 and "nothing removed" in declined.output and store.list_series() == [KEY, OTHER]
    confirmed = _cli("store", "rm", str(KEY), input="y\n")
    assert confirmed.exit_code == 0 and "removed binance:BTC/USDT:1h" in confirmed.output
    assert _cli("store", "rm", str(OTHER), "--yes").exit_code == 0
    assert store.list_series() == []
    missing = _cli("store", "rm", str(KEY), "--yes")
    assert missing.exit_code == 2 and "nothing stored" in missing.output
    assert _cli("store", "rm", "BTCUSDT", "--yes").exit_code == 2  # not EXCHANGE:SYMBOL:TIMEFRAME


def test_ingest_reports_the_corrupt_series_by_name_and_stores_the_others(store: CandleStore, source) -> None:
    path, truncated = _truncate(store, "2025.parquet")  # the newest year: where an update would resume
    eth = synthetic_candles("ETH/USDT", START, 24 * 400, seed=8)  # extends the 100 stored ETH candles
    with ExchangeEmulator({("BTC/USDT", "1h"): source, ("ETH/USDT", "1h"): eth}) as emu:
        reports = {r.series: r for r in ingest(Settings(), "binance", [KEY, OTHER], 0, candle_gate(), **_options(emu))}
    assert reports[str(KEY)].error.startswith("CorruptPartition: ") and str(path) in reports[str(KEY)].error
    assert f"candlecast store repair {KEY}" in reports[str(KEY)].error and path.read_bytes() == truncated
    assert reports[str(OTHER)].error is None
    pd.testing.assert_frame_equal(store.read(OTHER), eth.iloc[:-1].reset_index(drop=True))
