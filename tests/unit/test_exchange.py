"""The real ccxt.binance client against the local emulator: pagination, closed candles, errors, retries."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import ccxt
import numpy as np
import pandas as pd
import pytest

from candlecast.data.exchange import backoff_delay, fetch_closed_candles, make_exchange
from candlecast.devtools.emulator import KLINES_PATH, ExchangeEmulator, synthetic_emulator
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import CANDLE_COLUMNS

START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
HOUR = 3_600_000
N = 2_500


@pytest.fixture
def emu() -> Iterator[ExchangeEmulator]:
    with synthetic_emulator(["BTC/USDT", "ETH/USDT"], timeframe="1h", start_ms=START, n=N) as emulator:
        yield emulator


@pytest.fixture
def exchange(emu: ExchangeEmulator) -> ccxt.Exchange:
    return make_exchange("binance", api_url=emu.url, enable_rate_limit=False, timeout_ms=2_000)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def fetch(exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float], **kwargs) -> pd.DataFrame:
    """Fetch BTC/USDT 1h from START on the emulator's clock, recording backoff sleeps instead of sleeping."""
    args = {"symbol": "BTC/USDT", "timeframe": "1h", "since_ms": START, "now_ms": emu.now_ms}
    return fetch_closed_candles(exchange, **(args | {"sleep": sleeps.append} | kwargs))


def test_paginates_to_exactly_the_closed_source_candles(
    exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float]
) -> None:
    seen: list[int] = []
    got = fetch(exchange, emu, sleeps, progress=seen.append)
    source = emu.frame("BTC/USDT", "1h")
    pd.testing.assert_frame_equal(got, source.iloc[:-1].reset_index(drop=True))  # the last one is forming
    assert got["timestamp"].dtype == np.int64 and list(got.columns) == CANDLE_COLUMNS
    counts = emu.request_count
    assert counts[KLINES_PATH] == math.ceil(N / 1000)
    assert counts["/api/v3/exchangeInfo"] == 1
    assert set(counts) == {KLINES_PATH, "/api/v3/exchangeInfo"}  # no fapi/dapi/sapi detours
    assert seen == [1000, 2000, N - 1]
    assert sleeps == []


def test_since_in_the_middle_returns_the_tail(
    exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float]
) -> None:
    source = emu.frame("BTC/USDT", "1h")
    since = int(source["timestamp"].iloc[1800])
    got = fetch(exchange, emu, sleeps, since_ms=since)
    pd.testing.assert_frame_equal(got, source.iloc[1800:-1].reset_index(drop=True))
    assert emu.request_count[KLINES_PATH] == 1
    # a since inside a candle starts at the next open
    assert fetch(exchange, emu, sleeps, since_ms=since + 1)["timestamp"].iloc[0] == since + HOUR


def test_until_is_an_exclusive_bound(exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float]) -> None:
    source = emu.frame("BTC/USDT", "1h")
    got = fetch(exchange, emu, sleeps, until_ms=int(source["timestamp"].iloc[1500]))
    pd.testing.assert_frame_equal(got, source.iloc[:1500])
    assert emu.request_count[KLINES_PATH] == 2


def test_forming_candle_is_dropped_until_the_clock_closes_it(
    exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float]
) -> None:
    last_open = int(emu.frame("BTC/USDT", "1h")["timestamp"].iloc[-1])
    since = last_open - 2 * HOUR
    assert fetch(exchange, emu, sleeps, since_ms=since)["timestamp"].tolist() == [since, since + HOUR]
    emu.now_ms = last_open + HOUR  # the candle closes
    assert fetch(exchange, emu, sleeps, since_ms=since)["timestamp"].iloc[-1] == last_open


def test_forming_candle_is_dropped_even_when_the_exchange_sends_it(
    exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = exchange.fetch_ohlcv

    def ignores_limit(symbol, timeframe="1m", since=None, limit=None, params={}):  # noqa: B006 (ccxt's signature)
        return original(symbol, timeframe, since=since, limit=1000, params=params)

    monkeypatch.setattr(exchange, "fetch_ohlcv", ignores_limit)
    source = emu.frame("BTC/USDT", "1h")
    got = fetch(exchange, emu, sleeps, since_ms=int(source["timestamp"].iloc[-5]))
    assert got["timestamp"].tolist() == source["timestamp"].iloc[-5:-1].tolist()


def test_overlapping_pages_are_deduplicated(
    exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = exchange.fetch_ohlcv

    def overlaps(symbol, timeframe="1m", since=None, limit=None, params={}):  # noqa: B006 (ccxt's signature)
        """An exchange whose pages also repeat the 3 candles before ``since``."""
        return original(symbol, timeframe, since=since - 3 * HOUR, limit=limit + 3, params=params)

    monkeypatch.setattr(exchange, "fetch_ohlcv", overlaps)
    source = emu.frame("BTC/USDT", "1h")
    got = fetch(exchange, emu, sleeps, since_ms=int(source["timestamp"].iloc[10]), limit=100)
    pd.testing.assert_frame_equal(got, source.iloc[10:-1].reset_index(drop=True))


def test_default_clock_is_the_local_utc_clock() -> None:
    day = 86_400_000
    today = int(time.time() * 1000) // day * day
    candles = {("BTC/USDT", "1d"): synthetic_candles("BTC/USDT", today - 9 * day, 10, timeframe="1d")}
    with ExchangeEmulator(candles, now_ms=int(time.time() * 1000)) as emu:
        exchange = make_exchange("binance", api_url=emu.url, enable_rate_limit=False, timeout_ms=2_000)
        before = int(time.time() * 1000)
        got = fetch_closed_candles(exchange, "BTC/USDT", "1d", since_ms=today - 9 * day)
        after = int(time.time() * 1000)
    assert got["timestamp"].iloc[-1] in {before // day * day - day, after // day * day - day}
    assert len(got) >= 9


def test_since_after_now_returns_an_empty_frame_without_requests(
    exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float]
) -> None:
    got = fetch(exchange, emu, sleeps, since_ms=emu.now_ms)
    assert len(got) == 0 and list(got.columns) == CANDLE_COLUMNS and got["timestamp"].dtype == np.int64
    assert emu.request_count[KLINES_PATH] == 0


def test_unknown_symbol_fails_fast_and_names_it(
    exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float]
) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ccxt.BadSymbol, match="binance has no market 'BTC/USDC'.*'BTC/USDT'"):
        fetch(exchange, emu, sleeps, symbol="BTC/USDC")
    assert time.perf_counter() - t0 < 1.0
    assert emu.request_count[KLINES_PATH] == 0 and sleeps == []


def test_timeframe_the_exchange_does_not_offer_is_a_value_error(
    exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float]
) -> None:
    with pytest.raises(ValueError, match="does not offer timeframe '7h'.*1h"):
        fetch(exchange, emu, sleeps, timeframe="7h")
    assert emu.request_count[KLINES_PATH] == 0


def test_permanent_server_error_is_not_retried(
    exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float]
) -> None:
    # ccxt knows 4h, the emulator serves only 1h: Binance answers -1120 "Invalid interval."
    with pytest.raises(ccxt.BadRequest, match=r"binance BTC/USDT 4h: .*Invalid interval.*check the timefr"):
        fetch(exchange, emu, sleeps, timeframe="4h")
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
def test_transient_failures_are_retried_with_backoff(
    exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float], status: int
) -> None:
    exchange.load_markets()
    emu.fail_next(3, status)
    got = fetch(exchange, emu, sleeps)
    pd.testing.assert_frame_equal(got, emu.frame("BTC/USDT", "1h").iloc[:-1].reset_index(drop=True))
    assert emu.request_count[KLINES_PATH] == math.ceil(N / 1000) + 3
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):  # 0.25-0.5, 0.5-1, 1-2 s
        assert 0.25 * 2**attempt <= delay <= 0.5 * 2**attempt


def test_retries_are_bounded_and_the_last_error_is_named(
    exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float]
) -> None:
    exchange.load_markets()
    emu.fail_next(100, 503)
    with pytest.raises(ccxt.ExchangeNotAvailable, match="BTC/USDT 1h: gave up after 4 attempts.*NotAvail"):
        fetch(exchange, emu, sleeps, max_retries=3)
    assert emu.request_count[KLINES_PATH] == 4
    assert len(sleeps) == 3


def test_a_vanished_server_is_retried_then_reported(
    exchange: ccxt.Exchange, emu: ExchangeEmulator, sleeps: list[float]
) -> None:
    exchange.load_markets()
    emu.stop()
    t0 = time.perf_counter()
    with pytest.raises(ccxt.NetworkError, match="gave up after 2 attempts"):
        fetch(exchange, emu, sleeps, max_retries=1)
    assert time.perf_counter() - t0 < 1.0  # refused at once, not a hang until the timeout
    assert len(sleeps) == 1


def test_backoff_is_exponential_jittered_and_capped() -> None:
    assert backoff_delay(0, rand=lambda: 0.0) == 0.25
    assert backoff_delay(0, rand=lambda: 1.0) == 0.5
    assert backoff_delay(3, rand=lambda: 1.0) == 4.0
    assert backoff_delay(10, rand=lambda: 1.0) == 10.0
    assert backoff_delay(1000, rand=lambda: 0.0) == 5.0
