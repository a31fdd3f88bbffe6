"""The real ccxt client against the emulator replaying a market: every candle once, come what may.

Each test runs twice: on the real Binance 1h files of ../shared/data (skipped without them) and on a
seeded synthetic market with outages cut in by hand (always runs), so the fault-injection run of the
async fetch path never depends on the shared folder.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd
import pytest

from candlecast.data.candle_store import CandleStore
from candlecast.data.exchange import RetryPolicy
from candlecast.data.gaps import EXCHANGE_WIDE, SERIES_ONLY
from candlecast.data.ingest import SeriesReport, ingest
from candlecast.devtools.emulator import FAULTS, ExchangeEmulator
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.expectations.runner import validate_candles
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

HOUR = 3_600_000
FAST = {"rate_limit": False, "policy": RetryPolicy(max_retries=8, base_s=0.001, cap_s=0.01), "timeout_ms": 400}


@dataclass
class Market:
    """A replayed market and what is known about it beforehand, counted from the source frames."""

    emu: ExchangeEmulator
    symbols: list[str]
    rows: int  # candles per series (the same in every series)
    missing: int  # missing candles per series
    gap_count: int
    known_gap: dict[str, Any]  # one gap, classified, that every series has
    all_gaps: list[dict[str, Any]] | None  # every gap in time order, where the test lists them
    page: int  # candles per request

    @property
    def keys(self) -> list[SeriesKey]:
        return [SeriesKey("binance", s, "1h") for s in self.symbols]


# Counted from the files themselves (np.diff of the timestamps): 10 gaps, 20 missing hours, the same in all
# five pairs; the 4-hour one is Binance's 2021-08-13 maintenance.
REAL_SYMBOLS = ["BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT"]
AUG_13 = {"start": 1628820000000, "end": 1628830800000, "missing": 4, "kind": EXCHANGE_WIDE}

# The synthetic market: three pairs, 6,000 hours from 2024-01-01, with the same three outages cut out of
# all of them (1 + 3 + 1 hours); small pages, so a few thousand candles still make many requests.
SYNTH_START = 1_704_067_200_000
SYNTH_SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
OUTAGES = [[100], [2000, 2001, 2002], [4500]]


def _real_market(shared_data: Any) -> Market:
    files = [shared_data / "binance" / f"binance_{s.replace('/', '-')}_1h.csv.gz" for s in REAL_SYMBOLS]
    emu = ExchangeEmulator.from_files(files, timeout_s=0.8)
    return Market(emu, REAL_SYMBOLS, 43_803, 20, 10, AUG_13, None, 1000)


def _synthetic_market() -> Market:
    dropped = [i for outage in OUTAGES for i in outage]
    frames = {
        (s, "1h"): synthetic_candles(s, SYNTH_START, 6_000, seed=11).drop(index=dropped).reset_index(drop=True)
        for s in SYNTH_SYMBOLS
    }
    gaps = [
        {"start": SYNTH_START + o[0] * HOUR, "end": SYNTH_START + o[-1] * HOUR, "missing": len(o)}
        | {"kind": EXCHANGE_WIDE}
        for o in OUTAGES
    ]
    emu = ExchangeEmulator(frames, timeout_s=0.8)
    return Market(emu, SYNTH_SYMBOLS, 6_000 - len(dropped), len(dropped), len(gaps), gaps[1], gaps, 100)


@pytest.fixture(params=["synthetic", pytest.param("real", marks=pytest.mark.real_data)])
def market(request: pytest.FixtureRequest) -> Iterator[Market]:
    if request.param == "synthetic":
        found = _synthetic_market()
    else:
        found = _real_market(request.getfixturevalue("shared_data"))
    with found.emu:
        yield found


def _gate(frame: pd.DataFrame, series: SeriesKey):
    return validate_candles(frame, series.timeframe, str(series))


def _run(settings: Settings, market: Market, keys: list[SeriesKey] | None = None) -> list[SeriesReport]:
    emu = market.emu
    keys = market.keys if keys is None else keys
    return ingest(settings, "binance", keys, 0, _gate, api_url=emu.url, now_ms=emu.now_ms, limit=market.page, **FAST)


def _end(emu: ExchangeEmulator) -> int:
    return int(emu.frame("BTC/USDT", "1h")["timestamp"].iloc[-1]) + HOUR  # every source candle closed


def _assert_store_is_the_source(settings: Settings, market: Market) -> None:
    store = CandleStore(settings.candles_dir)
    for key in market.keys:
        pd.testing.assert_frame_equal(store.read(key), market.emu.frame(key.symbol, "1h"))


def _assert_gaps(report: SeriesReport, market: Market) -> None:
    assert report.missing == market.missing and len(report.gaps) == market.gap_count
    assert market.known_gap in report.gaps and all(g["kind"] == EXCHANGE_WIDE for g in report.gaps)
    assert market.all_gaps is None or report.gaps == market.all_gaps


def test_backfill_stores_exactly_the_source_and_reports_the_outages(home, market: Market) -> None:
    emu = market.emu
    emu.now_ms = _end(emu)
    settings = Settings()
    reports = _run(settings, market)

    _assert_store_is_the_source(settings, market)  # same count, same values, nothing invented
    pages = math.ceil(market.rows / market.page)
    for report in reports:
        assert report.error is None and report.fetched == report.stored == market.rows
        _assert_gaps(report, market)
        assert report.requests - report.retries == pages  # no page asked twice unless retried

    # readable without candlecast: plain pandas on the root, DuckDB with hive partitions
    n = len(market.symbols)
    assert len(pd.read_parquet(settings.candles_dir)) == n * market.rows
    sql = (
        f"SELECT symbol, count(*) AS n, count(DISTINCT timestamp) AS u FROM read_parquet("
        f"'{settings.candles_dir}/**/*.parquet', hive_partitioning = true) GROUP BY symbol ORDER BY symbol"
    )
    rows = duckdb.sql(sql).fetchall()
    assert rows == [(s.replace("/", "-"), market.rows, market.rows) for s in sorted(market.symbols)]

    # a second run: nothing new, no candle request at all (only the market list, once per run)
    before, info = emu.requests_by_symbol, emu.request_count["/api/v3/exchangeInfo"]
    again = _run(settings, market)
    assert [r.fetched for r in again] == [0] * n and [r.stored for r in again] == [0] * n
    assert emu.requests_by_symbol == before
    assert emu.request_count["/api/v3/exchangeInfo"] - info == 1
    _assert_store_is_the_source(settings, market)


def test_incremental_updates_fetch_only_what_closed_since(home, market: Market) -> None:
    emu = market.emu
    source = emu.frame("BTC/USDT", "1h")
    emu.now_ms = int(source["timestamp"].iloc[-30]) + HOUR // 2  # candle -30 is forming, with partial values
    settings = Settings()
    keys = market.keys[:2]
    first = _run(settings, market, keys)
    assert [r.stored for r in first] == [market.rows - 30] * 2
    store = CandleStore(settings.candles_dir)
    assert store.last_timestamp(keys[0]) == int(source["timestamp"].iloc[-31])

    emu.advance(10 * HOUR)  # ten candles close, the formerly forming one among them
    before = emu.requests_by_symbol
    second = _run(settings, market, keys)
    assert [r.stored for r in second] == [10, 10]
    assert all(emu.requests_by_symbol[k.symbol] - before[k.symbol] == 1 for k in keys)
    for key in keys:  # the stored candle is the closed one, not the partial one served while it formed
        pd.testing.assert_frame_equal(store.read(key), emu.frame(key.symbol, "1h").iloc[:-20].reset_index(drop=True))


def test_with_every_fault_injected_the_result_is_identical(home, market: Market) -> None:
    emu = market.emu
    emu.now_ms = _end(emu)
    settings = Settings()
    emu.chaos(0.3, FAULTS, seed=3)
    try:
        reports = _run(settings, market)
    finally:
        emu.chaos(0)
    _assert_store_is_the_source(settings, market)
    assert all(r.error is None and r.missing == market.missing for r in reports)
    pages = len(market.symbols) * math.ceil(market.rows / market.page)
    assert sum(r.retries for r in reports) > 20  # the faults really happened and were retried
    assert sum(r.requests for r in reports) > pages


def test_a_series_only_gap_is_told_apart_from_an_outage(home) -> None:
    """One pair misses an hour the others have: a halted market, not the exchange (synthetic only)."""
    frames = {(s, "1h"): synthetic_candles(s, SYNTH_START, 500, seed=12) for s in SYNTH_SYMBOLS}
    frames[("ETH/USDT", "1h")] = frames[("ETH/USDT", "1h")].drop(index=[200]).reset_index(drop=True)
    with ExchangeEmulator(frames, now_ms=SYNTH_START + 500 * HOUR) as emu:
        reports = ingest(Settings(), "binance", [SeriesKey("binance", s, "1h") for s in SYNTH_SYMBOLS], 0, _gate,
                         api_url=emu.url, now_ms=emu.now_ms, **FAST)  # fmt: skip
    by_series = {r.series: r for r in reports}
    assert by_series["binance:ETH/USDT:1h"].gaps == [
        {"start": SYNTH_START + 200 * HOUR, "end": SYNTH_START + 200 * HOUR, "missing": 1, "kind": SERIES_ONLY}
    ]
    assert by_series["binance:BTC/USDT:1h"].gaps == [] and by_series["binance:SOL/USDT:1h"].missing == 0
