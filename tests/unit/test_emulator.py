"""Each emulator fault, as the real ccxt client sees it, and how ``fetch_many`` (the production path) survives it."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator

import pandas as pd
import pytest

from candlecast.data.exchange import FetchStats, RetryPolicy, make_exchange
from candlecast.data.pagination import FetchJob, fetch_many, page_problem
from candlecast.devtools.emulator import KLINES_PATH, ExchangeEmulator, load_candle_file, synthetic_emulator

START = 1_704_067_200_000
HOUR = 3_600_000
N = 1_200
FAST = RetryPolicy(max_retries=3, base_s=0.001, cap_s=0.002)


@pytest.fixture
def emu() -> Iterator[ExchangeEmulator]:
    with synthetic_emulator(["BTC/USDT"], start_ms=START, n=N, timeout_s=0.6) as emulator:
        yield emulator


def _fetch(emu: ExchangeEmulator, policy: RetryPolicy = FAST, timeout_ms: int = 300) -> tuple[pd.DataFrame, FetchStats]:
    """BTC/USDT 1h from START through ``fetch_many``, and what it cost; its error is raised."""
    chunks: list[pd.DataFrame] = []

    async def run() -> tuple[FetchStats, BaseException | None]:
        exchange = make_exchange("binance", api_url=emu.url, enable_rate_limit=False, timeout_ms=timeout_ms)
        try:
            job = FetchJob("btc", "BTC/USDT", "1h", START)
            results = await fetch_many(exchange, [job], emu.now_ms, lambda _, c: chunks.append(c), policy=policy)
            return results["btc"]
        finally:
            await exchange.close()

    stats, error = asyncio.run(run())
    if error is not None:
        raise error
    return pd.concat(chunks, ignore_index=True), stats


def _closed(emu: ExchangeEmulator) -> pd.DataFrame:
    return emu.frame("BTC/USDT", "1h").iloc[:-1].reset_index(drop=True)


def _raw(emu: ExchangeEmulator) -> list[list]:
    """A klines page as the wire carries it (ccxt would sort and cut it before we saw it)."""
    url = f"{emu.url}{KLINES_PATH}?symbol=BTCUSDT&interval=1h&startTime={START}&limit=100"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("fault", ["truncate", "duplicate", "shuffle", "forming", "malformed"])
def test_page_faults_change_the_raw_page(emu: ExchangeEmulator, fault: str) -> None:
    clean = _raw(emu)
    emu.inject(fault)
    faulty = _raw(emu)
    if fault == "truncate":
        assert faulty == clean[: len(faulty)] and 0 < len(faulty) < len(clean)
    elif fault == "duplicate":
        assert len(faulty) > len(clean) and sorted(map(tuple, faulty)) != sorted(map(tuple, clean))
        assert {tuple(r) for r in faulty} == {tuple(r) for r in clean}
    elif fault == "shuffle":
        assert faulty != clean and sorted(faulty) == clean
    elif fault == "forming":  # the forming candle rides along beyond the requested range, with partial values
        last = emu.frame("BTC/USDT", "1h").iloc[-1]
        assert faulty[:-1] == clean and faulty[-1][0] == last["timestamp"] and float(faulty[-1][5]) < last["volume"]
    else:
        assert sum(a != b for a, b in zip(faulty, clean, strict=True)) == 1


@pytest.mark.parametrize("fault", ["429", "418", "500", "503", "timeout", "truncate", "duplicate", "shuffle",
                                   "malformed", "forming"])  # fmt: skip
def test_every_fault_is_survived_with_identical_candles(emu: ExchangeEmulator, fault: str) -> None:
    emu.inject(fault, n=2)
    got, stats = _fetch(emu)
    pd.testing.assert_frame_equal(got, _closed(emu))
    if fault in {"truncate", "duplicate", "shuffle", "forming"}:
        assert stats.retries == 0  # repaired by pagination and the closed-range clip, not by refetching
    else:
        assert stats.retries == 2 and stats.bad_pages == []


def test_a_page_that_stays_malformed_is_kept_for_the_gate(emu: ExchangeEmulator) -> None:
    emu.inject("malformed", n=FAST.max_retries + 1)
    got, stats = _fetch(emu)
    assert stats.retries == FAST.max_retries and len(stats.bad_pages) == 1
    assert page_problem(got.values.tolist(), HOUR) is not None  # not repaired, not dropped: the contract refuses it


def test_page_problem_names_what_is_wrong() -> None:
    good = [START, 10.0, 12.0, 9.0, 11.0, 5.0]
    assert page_problem([good], HOUR) is None
    assert "non-finite" in page_problem([[*good[:4], float("nan"), 5.0]], HOUR)
    assert "off the timeframe grid" in page_problem([[START + 1, *good[1:]]], HOUR)
    assert "non-positive" in page_problem([[START, -10.0, 12.0, 9.0, 11.0, 5.0]], HOUR)
    assert "bracketing" in page_problem([[START, 10.0, 9.0, 12.0, 11.0, 5.0]], HOUR)
    assert "different values" in page_problem([good, [*good[:5], 6.0]], HOUR)
    assert page_problem([good, good], HOUR) is None  # an exact repeat is harmless


@pytest.mark.slow  # waits out the client's back-off
def test_rate_limit_answers_429_and_the_client_backs_off(emu: ExchangeEmulator) -> None:
    with synthetic_emulator(["BTC/USDT"], start_ms=START, n=5_000, rate_limit=2) as limited:
        got, stats = _fetch(limited, RetryPolicy(max_retries=10, base_s=0.2, cap_s=1.0), timeout_ms=10_000)
    assert len(got) == 4_999 and stats.retries >= 1  # 5 pages at 2 per second: some were refused, then served


def test_clock_advances_on_demand_and_with_speed() -> None:
    with synthetic_emulator(["BTC/USDT"], start_ms=START, n=10, now_ms=START, speed=3600.0) as emu:
        t0 = emu.now_ms
        assert emu.advance(HOUR) >= t0 + HOUR
        assert emu.now_ms > t0 + HOUR  # real time passes 3600x faster


def test_unknown_fault_and_bad_file_names_are_refused(emu: ExchangeEmulator, tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown fault 'gremlins'"):
        emu.inject("gremlins")
    bad = tmp_path / "btc.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n")
    with pytest.raises(ValueError, match="EXCHANGE_BASE-QUOTE_TIMEFRAME"):
        load_candle_file(bad)


def test_requests_are_counted_per_symbol(emu: ExchangeEmulator) -> None:
    _fetch(emu)
    assert emu.requests_by_symbol == {"BTC/USDT": 2} and emu.request_count[KLINES_PATH] == 2
