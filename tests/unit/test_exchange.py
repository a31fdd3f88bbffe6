"""The real async ccxt.binance client against the local emulator, through ``fetch_many`` (what production runs).

Pagination, closed candles, errors and retries: each test drives the same path as `candlecast ingest` and the
ingest flow, with backoff sleeps recorded instead of slept.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import ccxt
import numpy as np
import pandas as pd
import pytest

from candlecast.data.candle_store import empty_candles
from candlecast.data.exchange import FetchStats, RetryPolicy, backoff_delay, make_exchange
from candlecast.data.fetching import fetch_to_staging
from candlecast.data.pagination import FetchJob, UnknownMarket, fetch_many
from candlecast.devtools.emulator import KLINES_PATH, ExchangeEmulator, synthetic_emulator
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import CANDLE_COLUMNS, SeriesKey
from candlecast.settings import Settings

START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
HOUR = 3_600_000
N = 2_500

Prepare = Callable[[Any], Awaitable[None]]


@pytest.fixture
def emu() -> Iterator[ExchangeEmulator]:
    with synthetic_emulator(["BTC/USDT", "ETH/USDT"], timeframe="1h", start_ms=START, n=N) as emulator:
        yield emulator


def fetch(
    emu: ExchangeEmulator,
    *,
    symbol: str = "BTC/USDT",
    timeframe: str = "1h",
    since_ms: int = START,
    until_ms: int | None = None,
    now_ms: int | None = None,
    limit: int = 1000,
    chunk_rows: int = 10**9,
    policy: RetryPolicy | None = None,
    sleeps: list[float] | None = None,
    chunks: list[int] | None = None,
    prepare: Prepare | None = None,
) -> tuple[pd.DataFrame, FetchStats]:
    """One series through ``fetch_many`` on the emulator's clock; its error, if any, is raised.

    ``prepare`` runs on the client before the fetch (load markets, stop the server, wrap a method).
    """
    sleeps = [] if sleeps is None else sleeps
    received: list[pd.DataFrame] = []

    async def record_sleep(delay: float) -> None:
        sleeps.append(delay)

    async def run() -> tuple[FetchStats, BaseException | None]:
        exchange = make_exchange("binance", api_url=emu.url, enable_rate_limit=False, timeout_ms=2_000)
        try:
            if prepare is not None:
                await prepare(exchange)
            job = FetchJob("series", symbol, timeframe, since_ms, until_ms)
            results = await fetch_many(
                exchange,
                [job],
                emu.now_ms if now_ms is None else now_ms,
                lambda _, chunk: received.append(chunk),
                limit=limit,
                chunk_rows=chunk_rows,
                policy=policy or RetryPolicy(),
                sleep=record_sleep,
            )
            return results["series"]
        finally:
            await exchange.close()

    stats, error = asyncio.run(run())
    if error is not None:
        raise error
    if chunks is not None:
        chunks.extend(len(c) for c in received)
    frame = pd.concat(received, ignore_index=True) if received else empty_candles()
    return frame, stats


def _closed(emu: ExchangeEmulator, symbol: str = "BTC/USDT") -> pd.DataFrame:
    return emu.frame(symbol, "1h").iloc[:-1].reset_index(drop=True)  # the newest candle is forming


def test_paginates_to_exactly_the_closed_source_candles_in_disjoint_chunks(emu: ExchangeEmulator) -> None:
    sleeps: list[float] = []
    chunks: list[int] = []
    got, stats = fetch(emu, chunk_rows=1000, sleeps=sleeps, chunks=chunks)
    pd.testing.assert_frame_equal(got, _closed(emu))
    assert got["timestamp"].dtype == np.int64 and list(got.columns) == CANDLE_COLUMNS
    assert chunks == [1000, 1000, N - 2001]  # stored as they arrive: a long backfill is never held whole
    counts = emu.request_count
    assert counts[KLINES_PATH] == math.ceil(N / 1000) == stats.requests
    assert counts["/api/v3/exchangeInfo"] == 1
    assert set(counts) == {KLINES_PATH, "/api/v3/exchangeInfo"}  # no fapi/dapi/sapi detours
    assert stats.rows == N - 1 and stats.retries == 0 and sleeps == []


def test_since_in_the_middle_returns_the_tail(emu: ExchangeEmulator) -> None:
    source = emu.frame("BTC/USDT", "1h")
    since = int(source["timestamp"].iloc[1800])
    got, _ = fetch(emu, since_ms=since)
    pd.testing.assert_frame_equal(got, source.iloc[1800:-1].reset_index(drop=True))
    assert emu.request_count[KLINES_PATH] == 1
    # a since inside a candle starts at the next open
    assert fetch(emu, since_ms=since + 1)[0]["timestamp"].iloc[0] == since + HOUR


def test_until_is_an_exclusive_bound(emu: ExchangeEmulator) -> None:
    source = emu.frame("BTC/USDT", "1h")
    got, _ = fetch(emu, until_ms=int(source["timestamp"].iloc[1500]))
    pd.testing.assert_frame_equal(got, source.iloc[:1500])
    assert emu.request_count[KLINES_PATH] == 2


def test_forming_candle_is_dropped_until_the_clock_closes_it(emu: ExchangeEmulator) -> None:
    last_open = int(emu.frame("BTC/USDT", "1h")["timestamp"].iloc[-1])
    since = last_open - 2 * HOUR
    assert fetch(emu, since_ms=since)[0]["timestamp"].tolist() == [since, since + HOUR]
    emu.now_ms = last_open + HOUR  # the candle closes
    assert fetch(emu, since_ms=since)[0]["timestamp"].iloc[-1] == last_open


def _wrap_fetch_ohlcv(change: Callable[[int, int], tuple[int, int]]) -> Prepare:
    """A client whose pages are asked with (since, limit) changed: an exchange that ignores what it was asked."""

    async def prepare(exchange: Any) -> None:
        original = exchange.fetch_ohlcv

        async def changed(symbol, timeframe="1m", since=None, limit=None, params={}):  # noqa: B006 (ccxt's signature)
            since, limit = change(since, limit)
            return await original(symbol, timeframe, since=since, limit=limit, params=params)

        exchange.fetch_ohlcv = changed

    return prepare


def test_forming_candle_is_dropped_even_when_the_exchange_sends_it(emu: ExchangeEmulator) -> None:
    source = emu.frame("BTC/USDT", "1h")
    ignores_limit = _wrap_fetch_ohlcv(lambda since, limit: (since, 1000))
    got, _ = fetch(emu, since_ms=int(source["timestamp"].iloc[-5]), prepare=ignores_limit)
    assert got["timestamp"].tolist() == source["timestamp"].iloc[-5:-1].tolist()


def test_overlapping_pages_are_deduplicated(emu: ExchangeEmulator) -> None:
    overlaps = _wrap_fetch_ohlcv(lambda since, limit: (since - 3 * HOUR, limit + 3))  # repeats 3 candles per page
    source = emu.frame("BTC/USDT", "1h")
    got, stats = fetch(emu, since_ms=int(source["timestamp"].iloc[10]), limit=100, prepare=overlaps)
    pd.testing.assert_frame_equal(got, source.iloc[10:-1].reset_index(drop=True))
    assert stats.requests == math.ceil((N - 11) / 100)


def test_default_clock_is_the_local_utc_clock(home: Path) -> None:
    day = 86_400_000
    today = int(time.time() * 1000) // day * day
    candles = {("BTC/USDT", "1d"): synthetic_candles("BTC/USDT", today - 9 * day, 10, timeframe="1d")}
    key = SeriesKey("binance", "BTC/USDT", "1d")
    with ExchangeEmulator(candles, now_ms=int(time.time() * 1000)) as emu:
        before = int(time.time() * 1000)
        fetched = fetch_to_staging(Settings(), "binance", [key], today - 9 * day, api_url=emu.url, rate_limit=False)
        after = int(time.time() * 1000)
    assert fetched[key].error is None
    got = pd.concat([pd.read_parquet(p) for p in fetched[key].staged], ignore_index=True)
    assert got["timestamp"].iloc[-1] in {before // day * day - day, after // day * day - day}  # today's is forming
    assert len(got) >= 9


def test_since_after_now_fetches_nothing_without_requests(emu: ExchangeEmulator) -> None:
    chunks: list[int] = []
    got, stats = fetch(emu, since_ms=emu.now_ms, chunks=chunks)
    assert chunks == [] and got.empty and list(got.columns) == CANDLE_COLUMNS
    assert emu.request_count[KLINES_PATH] == 0 and stats.requests == 0


def test_an_unknown_symbol_refuses_the_whole_fetch_before_any_candle_request(emu: ExchangeEmulator) -> None:
    """A typo in a symbol list fetches nothing, so no series of the list is half-created."""
    got: dict[str, int] = {}

    async def run() -> dict[Any, tuple[FetchStats, BaseException | None]]:
        exchange = make_exchange("binance", api_url=emu.url, enable_rate_limit=False)
        try:
            jobs = [FetchJob("good", "ETH/USDT", "1h", START), FetchJob("bad", "BTC/USDC", "1h", START)]
            on_chunk = lambda key, chunk: got.__setitem__(key, got.get(key, 0) + len(chunk))  # noqa: E731
            return await fetch_many(exchange, jobs, emu.now_ms, on_chunk)
        finally:
            await exchange.close()

    with pytest.raises(UnknownMarket) as refused:
        asyncio.run(run())
    message = str(refused.value)
    assert "binance has no market 'BTC/USDC' (did you mean 'BTC/USDT'" in message
    assert "it lists 2: BTC/USDT, ETH/USDT" in message and "\n" not in message
    assert emu.request_count[KLINES_PATH] == 0 and got == {}


def test_a_symbol_without_close_match_lists_a_few_markets_the_exchange_has(emu: ExchangeEmulator) -> None:
    with pytest.raises(UnknownMarket, match=r"no market .DOGE/XYZ.; it lists 2: BTC/USDT, ETH/USDT"):
        fetch(emu, symbol="DOGE/XYZ")
    assert emu.request_count[KLINES_PATH] == 0


def test_timeframe_the_exchange_does_not_offer_is_a_value_error(emu: ExchangeEmulator) -> None:
    with pytest.raises(ValueError, match="does not offer timeframe '7h'.*1h"):
        fetch(emu, timeframe="7h")
    assert emu.request_count[KLINES_PATH] == 0


def test_permanent_server_error_is_not_retried(emu: ExchangeEmulator) -> None:
    sleeps: list[float] = []
    # ccxt knows 4h, the emulator serves only 1h: Binance answers -1120 "Invalid interval."
    with pytest.raises(ccxt.BadRequest, match=r"binance BTC/USDT 4h: .*Invalid interval.*check the timefr"):
        fetch(emu, timeframe="4h", sleeps=sleeps)
    assert emu.request_count[KLINES_PATH] == 1 and sleeps == []


def test_unknown_exchange_id_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"unknown exchange id 'binanse'.*'binance'.*ccxt\.exchanges"):
        make_exchange("binanse")


def test_make_exchange_points_every_api_url_at_the_emulator() -> None:
    exchange = make_exchange("binance", api_url="http://127.0.0.1:9/")
    assert exchange.enableRateLimit is True and exchange.timeout == 10_000
    assert all(url.startswith("http://127.0.0.1:9/") for url in exchange.urls["api"].values())
    assert exchange.urls["api"]["public"] == "http://127.0.0.1:9/api/v3"
    assert exchange.options["fetchMarkets"] == {"types": ["spot"]}
    assert exchange.options["fetchCurrencies"] is False


@pytest.mark.parametrize("status", [503, 429, 500])
def test_transient_failures_are_retried_with_backoff(emu: ExchangeEmulator, status: int) -> None:
    sleeps: list[float] = []

    async def markets_then_faults(exchange: Any) -> None:
        await exchange.load_markets()
        emu.fail_next(3, status)

    got, stats = fetch(emu, sleeps=sleeps, prepare=markets_then_faults)
    pd.testing.assert_frame_equal(got, _closed(emu))
    assert emu.request_count[KLINES_PATH] == math.ceil(N / 1000) + 3 == stats.requests
    assert stats.retries == len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):  # 0.25-0.5, 0.5-1, 1-2 s
        assert 0.25 * 2**attempt <= delay <= 0.5 * 2**attempt


def test_a_failing_market_list_is_retried_too(emu: ExchangeEmulator) -> None:
    sleeps: list[float] = []
    emu.fail_next(2, 503, path="/api/v3/exchangeInfo")
    got, _ = fetch(emu, sleeps=sleeps)
    pd.testing.assert_frame_equal(got, _closed(emu))
    assert emu.request_count["/api/v3/exchangeInfo"] == 3 and len(sleeps) == 2


def test_a_market_list_that_never_loads_comes_back_as_every_series_error(emu: ExchangeEmulator) -> None:
    emu.fail_next(100, 503, path="/api/v3/exchangeInfo")

    async def run() -> dict[Any, tuple[FetchStats, BaseException | None]]:
        exchange = make_exchange("binance", api_url=emu.url, enable_rate_limit=False)
        try:
            jobs = [FetchJob(s, s, "1h", START) for s in ("BTC/USDT", "ETH/USDT")]
            fast = RetryPolicy(max_retries=1, base_s=0.001)
            return await fetch_many(exchange, jobs, emu.now_ms, lambda *_: None, policy=fast)
        finally:
            await exchange.close()

    results = asyncio.run(run())  # returned beside each series, not raised out of fetch_many
    assert set(results) == {"BTC/USDT", "ETH/USDT"}
    for _, error in results.values():
        assert isinstance(error, ccxt.ExchangeNotAvailable) and "binance markets: gave up after 2" in str(error)
    assert emu.request_count[KLINES_PATH] == 0


def test_retries_are_bounded_and_the_last_error_is_named(emu: ExchangeEmulator) -> None:
    sleeps: list[float] = []

    async def markets_then_outage(exchange: Any) -> None:
        await exchange.load_markets()
        emu.fail_next(100, 503)

    with pytest.raises(ccxt.ExchangeNotAvailable, match="BTC/USDT 1h: gave up after 4 attempts.*NotAvail"):
        fetch(emu, policy=RetryPolicy(max_retries=3), sleeps=sleeps, prepare=markets_then_outage)
    assert emu.request_count[KLINES_PATH] == 4
    assert len(sleeps) == 3


def test_a_vanished_server_is_retried_then_reported(emu: ExchangeEmulator) -> None:
    sleeps: list[float] = []

    async def markets_then_gone(exchange: Any) -> None:
        await exchange.load_markets()
        emu.stop()

    with pytest.raises(ccxt.NetworkError, match="gave up after 2 attempts") as failure:
        fetch(emu, policy=RetryPolicy(max_retries=1), sleeps=sleeps, prepare=markets_then_gone)
    assert not isinstance(failure.value, ccxt.RequestTimeout)  # refused at once, not a hang until the timeout
    assert len(sleeps) == 1


def test_backoff_is_exponential_jittered_and_capped() -> None:
    assert backoff_delay(0, rand=lambda: 0.0) == 0.25
    assert backoff_delay(0, rand=lambda: 1.0) == 0.5
    assert backoff_delay(3, rand=lambda: 1.0) == 4.0
    assert backoff_delay(10, rand=lambda: 1.0) == 10.0
    assert backoff_delay(1000, rand=lambda: 0.0) == 5.0


def test_bad_arguments_are_refused_before_any_request(emu: ExchangeEmulator) -> None:
    with pytest.raises(ValueError, match="limit must be >= 1"):
        fetch(emu, limit=0)
    with pytest.raises(ValueError, match="max_retries must be >= 0"):
        RetryPolicy(max_retries=-1)
    assert emu.request_count[KLINES_PATH] == 0
