"""Gaps are found, counted and classified, on synthetic cases and on the real Binance outages."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from candlecast.data.gaps import EXCHANGE_WIDE, SERIES_ONLY, Gap, classify, find_gaps
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import SeriesKey

H = 3_600_000


def test_find_gaps_lists_each_missing_range() -> None:
    ts = [0, H, 4 * H, 5 * H, 7 * H]
    assert find_gaps(ts, "1h") == [Gap(2 * H, 3 * H, 2), Gap(6 * H, 6 * H, 1)]
    assert find_gaps([0, H, 2 * H], "1h") == [] and find_gaps([], "1h") == []


def test_classify_marks_outages_shared_by_every_spanning_peer() -> None:
    a, b, c = (SeriesKey("binance", s, "1h") for s in ("A/USDT", "B/USDT", "C/USDT"))
    other = SeriesKey("kraken", "A/USD", "1h")
    outage, own = Gap(10 * H, 11 * H, 2), Gap(20 * H, 20 * H, 1)
    gaps = {a: [outage, own], b: [outage], c: [], other: [outage]}
    spans = {a: (0, 30 * H), b: (0, 30 * H), c: (12 * H, 30 * H), other: (0, 30 * H)}
    out = classify(gaps, spans)
    # c starts after the outage, so it is no witness; kraken is another exchange
    assert [g.kind for g in out[a]] == [EXCHANGE_WIDE, SERIES_ONLY]
    assert [g.kind for g in out[other]] == [SERIES_ONLY]


def test_the_main_binance_set_misses_20_hours_in_10_gaps(shared_data: Path) -> None:
    frames = {
        SeriesKey("binance", s, "1h"): pd.read_csv(shared_data / "binance" / f"binance_{s.replace('/', '-')}_1h.csv.gz")
        for s in ("BTC/USDT", "ETH/USDT", "XRP/USDT")
    }
    gaps = {k: find_gaps(f["timestamp"].to_numpy(), "1h") for k, f in frames.items()}
    spans = {k: (int(f["timestamp"].iloc[0]), int(f["timestamp"].iloc[-1])) for k, f in frames.items()}
    for found in classify(gaps, spans).values():
        assert len(found) == 10 and sum(g.missing for g in found) == 20
        assert all(g.kind == EXCHANGE_WIDE for g in found)
        assert found[0] == Gap(1606716000000, 1606716000000, 1, EXCHANGE_WIDE)  # 2020-11-30 06:00
        assert found[-1] == Gap(1679662800000, 1679662800000, 1, EXCHANGE_WIDE)  # 2023-03-24 13:00


def test_synthetic_outages_shared_by_every_pair_are_exchange_wide_and_a_lone_hole_is_not() -> None:
    """The twin of the real-set test, on seeded candles with outages cut in by hand (always runs)."""
    start = 1_704_067_200_000
    outages = [[50], [300, 301, 302], [900]]  # 5 hours in 3 gaps, cut from every pair
    dropped = [i for o in outages for i in o]
    frames = {
        SeriesKey("binance", s, "1h"): synthetic_candles(s, start, 1_000, seed=9).drop(index=dropped)
        for s in ("BTC/USDT", "ETH/USDT", "XRP/USDT")
    }
    eth = SeriesKey("binance", "ETH/USDT", "1h")
    frames[eth] = frames[eth].drop(index=[600])  # ETH alone misses an hour: a halted market, not the exchange
    gaps = {k: find_gaps(f["timestamp"].to_numpy(), "1h") for k, f in frames.items()}
    spans = {k: (int(f["timestamp"].iloc[0]), int(f["timestamp"].iloc[-1])) for k, f in frames.items()}
    expected = [Gap(start + o[0] * H, start + o[-1] * H, len(o), EXCHANGE_WIDE) for o in outages]
    for key, found in classify(gaps, spans).items():
        if key == eth:
            assert found == [*expected[:2], Gap(start + 600 * H, start + 600 * H, 1, SERIES_ONLY), expected[2]]
        else:
            assert found == expected and sum(g.missing for g in found) == 5
