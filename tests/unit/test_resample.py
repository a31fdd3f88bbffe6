"""Resampled stored candles equal the exchange's own higher-timeframe candles (real Binance files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from candlecast.data.resample import resample
from candlecast.devtools.synthetic import synthetic_candles


def _read(shared_data: Path, tf: str) -> pd.DataFrame:
    return pd.read_csv(shared_data / "binance" / f"binance_BTC-USDT_{tf}.csv.gz")


def _assert_same(ours: pd.DataFrame, theirs: pd.DataFrame) -> int:
    joined = ours.merge(theirs, on="timestamp", suffixes=("", "_x"), validate="1:1")
    assert len(joined) == len(ours)
    for col in ("open", "high", "low", "close"):
        assert (joined[col] == joined[f"{col}_x"]).all(), col
    np.testing.assert_allclose(joined["volume"], joined["volume_x"], rtol=1e-9, atol=0)  # summation order
    return len(joined)


def test_1m_rolls_up_exactly_to_binance_1h_and_5m(shared_data: Path) -> None:
    minutes = _read(shared_data, "1m")
    hours = resample(minutes, "1m", "1h")
    assert _assert_same(hours, _read(shared_data, "1h")) == 719  # the file starts and ends mid-hour: 719 whole
    assert _assert_same(resample(minutes, "1m", "5m"), _read(shared_data, "5m")) == 8_639


def test_1h_rolls_up_to_binance_1d_even_across_outages(shared_data: Path) -> None:
    days = resample(_read(shared_data, "1h"), "1h", "1d")
    # 10 days hold an outage (missing hours) and still equal Binance's candle; the last, unfinished day is dropped
    assert _assert_same(days, _read(shared_data, "1d")) == 1_825


def test_partial_edge_buckets_are_dropped_and_bad_targets_refused(shared_data: Path) -> None:
    minutes = _read(shared_data, "1m").iloc[30:150]  # 2 hours of minutes, not on the hour: 1 whole hour
    hours = resample(minutes, "1m", "1h")
    assert len(hours) == 1 and hours["timestamp"].iloc[0] % 3_600_000 == 0
    with pytest.raises(ValueError, match="whole multiple"):
        resample(minutes, "1m", "1m")
    with pytest.raises(ValueError, match="sorted"):
        resample(minutes.iloc[::-1], "1m", "1h")


# Synthetic twins (always run): seeded minute and hour candles, held against an independent aggregation by
# pandas' own resampler on epoch-aligned buckets, which is how the exchange builds its higher timeframes.

SYNTH_START = 1_704_067_200_000 + 17 * 60_000  # 2024-01-01 00:17: starts mid-hour, like the real 1m file


def _reference(frame: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Every bucket holding at least one candle, by pandas' resampler (first/max/min/last/sum)."""
    indexed = frame.set_index(pd.to_datetime(frame["timestamp"], unit="ms"))
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    out = indexed.resample(rule, origin="epoch").agg(agg).dropna(subset=["open"])
    out.insert(0, "timestamp", out.index.asi8 // 1_000_000)
    return out.reset_index(drop=True)


def test_synthetic_1m_rolls_up_to_the_reference_1h_and_5m() -> None:
    minutes = synthetic_candles("BTC/USDT", SYNTH_START, 3 * 1440, timeframe="1m", seed=3)
    hours = resample(minutes, "1m", "1h")
    assert len(hours) == 71  # 72 hours touched, the first (from 00:17) and the last (to 00:16) are partial
    assert _assert_same(hours, _reference(minutes, "1h")) == 71
    fives = resample(minutes, "1m", "5m")
    assert _assert_same(fives, _reference(minutes, "5min")) == len(fives) == 3 * 288 - 1


def test_synthetic_1h_rolls_up_to_1d_even_across_outages() -> None:
    hours = synthetic_candles("BTC/USDT", 1_704_067_200_000, 24 * 30, seed=4)
    hours = hours.drop(index=[30, 31, 32, 400]).reset_index(drop=True)  # two outages inside days 2 and 17
    days = resample(hours, "1h", "1d")
    assert _assert_same(days, _reference(hours, "1D")) == 30  # the days with missing hours are kept


def test_synthetic_partial_edge_buckets_are_dropped_and_bad_targets_refused() -> None:
    minutes = synthetic_candles("BTC/USDT", SYNTH_START, 120, timeframe="1m", seed=3)  # 00:17 .. 02:16
    hours = resample(minutes, "1m", "1h")
    assert hours["timestamp"].tolist() == [1_704_067_200_000 + 3_600_000]  # only 01:00-02:00 is whole
    with pytest.raises(ValueError, match="whole multiple"):
        resample(minutes, "1m", "1m")
    with pytest.raises(ValueError, match="sorted"):
        resample(minutes.iloc[::-1], "1m", "1h")
