"""Resampled stored candles equal the exchange's own higher-timeframe candles (real Binance files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from candlecast.data.resample import resample


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
