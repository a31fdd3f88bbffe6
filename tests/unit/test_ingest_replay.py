"""The real ccxt client against the emulator replaying ../shared/data/binance 1h: every candle once, come what may."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from candlecast.data.candle_store import CandleStore
from candlecast.data.exchange import RetryPolicy
from candlecast.data.gaps import EXCHANGE_WIDE
from candlecast.data.ingest import SeriesReport, ingest
from candlecast.devtools.emulator import FAULTS, ExchangeEmulator
from candlecast.schema import SeriesKey
from candlecast.settings import Settings
from expectations.runner import validate_candles

HOUR = 3_600_000
SYMBOLS = ["BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT"]
KEYS = [SeriesKey("binance", s, "1h") for s in SYMBOLS]
FAST = {"rate_limit": False, "policy": RetryPolicy(max_retries=8, base_s=0.001, cap_s=0.01), "timeout_ms": 400}

# Counted from the files themselves (np.diff of the timestamps): 10 gaps, 20 missing hours, the same
# in all five pairs; the 4-hour one is Binance's 2021-08-13 maintenance.
MISSING_HOURS, GAP_COUNT = 20, 10
AUG_13 = {"start": 1628820000000, "end": 1628830800000, "missing": 4, "kind": EXCHANGE_WIDE}


@pytest.fixture
def emu(shared_data: Path) -> Iterator[ExchangeEmulator]:
    files = [shared_data / "binance" / f"binance_{s.replace('/', '-')}_1h.csv.gz" for s in SYMBOLS]
    with ExchangeEmulator.from_files(files, timeout_s=0.8) as emulator:
        yield emulator


def _gate(frame: pd.DataFrame, series: SeriesKey):
    return validate_candles(frame, series.timeframe, str(series))


def _run(settings: Settings, emu: ExchangeEmulator, keys: list[SeriesKey] = KEYS) -> list[SeriesReport]:
    return ingest(settings, "binance", keys, 0, _gate, api_url=emu.url, now_ms=emu.now_ms, **FAST)


def _end(emu: ExchangeEmulator) -> int:
    return int(emu.frame("BTC/USDT", "1h")["timestamp"].iloc[-1]) + HOUR  # every source candle closed


def _assert_store_is_the_source(settings: Settings, emu: ExchangeEmulator) -> None:
    store = CandleStore(settings.candles_dir)
    for key in KEYS:
        pd.testing.assert_frame_equal(store.read(key), emu.frame(key.symbol, "1h"))


def test_backfill_stores_exactly_the_source_and_reports_the_real_outages(home: Path, emu: ExchangeEmulator) -> None:
    emu.now_ms = _end(emu)
    settings = Settings()
    reports = _run(settings, emu)

    _assert_store_is_the_source(settings, emu)  # same count, same values, nothing invented
    for report in reports:
        assert report.error is None and report.fetched == report.stored == 43_803
        assert report.missing == MISSING_HOURS and len(report.gaps) == GAP_COUNT
        assert AUG_13 in report.gaps and all(g["kind"] == EXCHANGE_WIDE for g in report.gaps)
        assert report.requests - report.retries == 44  # ceil(43,803 / 1000): no page asked twice unless retried

    # readable without candlecast: plain pandas on the root, DuckDB with hive partitions
    assert len(pd.read_parquet(settings.candles_dir)) == 5 * 43_803
    sql = (
        f"SELECT symbol, count(*) AS n, count(DISTINCT timestamp) AS u FROM read_parquet("
        f"'{settings.candles_dir}/**/*.parquet', hive_partitioning = true) GROUP BY symbol ORDER BY symbol"
    )
    rows = duckdb.sql(sql).fetchall()
    assert rows == [(s.replace("/", "-"), 43_803, 43_803) for s in sorted(SYMBOLS)]

    # a second run: nothing new, no candle request at all (only the market list, once per run)
    before, info = emu.requests_by_symbol, emu.request_count["/api/v3/exchangeInfo"]
    again = _run(settings, emu)
    assert [r.fetched for r in again] == [0] * 5 and [r.stored for r in again] == [0] * 5
    assert emu.requests_by_symbol == before
    assert emu.request_count["/api/v3/exchangeInfo"] - info == 1  # <= 2 requests per series
    _assert_store_is_the_source(settings, emu)


def test_incremental_updates_fetch_only_what_closed_since(home: Path, emu: ExchangeEmulator) -> None:
    source = emu.frame("BTC/USDT", "1h")
    emu.now_ms = int(source["timestamp"].iloc[-30]) + HOUR // 2  # candle -30 is forming, with partial values
    settings = Settings()
    keys = KEYS[:2]
    first = _run(settings, emu, keys)
    assert [r.stored for r in first] == [43_803 - 30] * 2
    store = CandleStore(settings.candles_dir)
    assert store.last_timestamp(keys[0]) == int(source["timestamp"].iloc[-31])

    emu.advance(10 * HOUR)  # ten candles close, the formerly forming one among them
    before = emu.requests_by_symbol
    second = _run(settings, emu, keys)
    assert [r.stored for r in second] == [10, 10]
    assert all(emu.requests_by_symbol[k.symbol] - before[k.symbol] == 1 for k in keys)
    for key in keys:  # the stored candle is the closed one, not the partial one served while it formed
        pd.testing.assert_frame_equal(store.read(key), emu.frame(key.symbol, "1h").iloc[:-20].reset_index(drop=True))


def test_with_every_fault_injected_the_result_is_identical(home: Path, emu: ExchangeEmulator) -> None:
    emu.now_ms = _end(emu)
    settings = Settings()
    emu.chaos(0.3, FAULTS, seed=3)
    try:
        reports = _run(settings, emu)
    finally:
        emu.chaos(0)
    _assert_store_is_the_source(settings, emu)
    assert all(r.error is None and r.missing == MISSING_HOURS for r in reports)
    assert sum(r.retries for r in reports) > 20  # the faults really happened and were retried
    assert sum(r.requests for r in reports) > 5 * 44
