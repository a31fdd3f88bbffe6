"""The base candle features on NumPy arrays equal the pandas Series version they replaced, bit for bit.

``_pandas_candle_features`` below is the old implementation, kept verbatim as the reference. Both run
on candles with the cases that matter: missing candles (returns must not bridge them, the rolling
std needs half its window), a flat volume stretch (z-score 0, not inf), timestamps off the hour
(minutes in the calendar features), dates before 1970 (floor division of negative stamps), integer
price columns and a frame shorter than the rolling window.
"""

import numpy as np
import pandas as pd
import pytest

from candlecast.config import FeatureConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import _candle_features, _rolling_std

HOUR = 3_600_000
START = 1_704_067_200_000


def _gapless_diff(x: pd.Series, ts: pd.Series, k: int, step: int) -> pd.Series:
    return x.diff(k).where(ts.diff(k) == k * step)


def _pandas_candle_features(c: pd.DataFrame, cfg: FeatureConfig, step: int) -> pd.DataFrame:
    """The implementation before issue 15, verbatim."""
    close = c["close"].astype("float64")
    ret_1 = _gapless_diff(np.log(close), c["timestamp"], 1, step)
    log_volume = np.log1p(c["volume"].astype("float64"))
    vol_mean = log_volume.rolling(cfg.vol_window).mean()
    vol_std = log_volume.rolling(cfg.vol_window).std()
    ts = pd.to_datetime(c["timestamp"], unit="ms", utc=True)
    hour = ts.dt.hour + ts.dt.minute / 60.0
    dow = ts.dt.dayofweek + hour / 24.0
    return pd.DataFrame(
        {
            "timestamp": c["timestamp"].astype("int64"),
            "close": close,
            "ret_1": ret_1,
            "range": np.log(c["high"] / c["low"]),
            "body": np.log(c["close"] / c["open"]),
            "rvol": _rolling_std(ret_1, cfg.vol_window),
            "volume_z": ((log_volume - vol_mean) / vol_std.replace(0.0, np.nan)).fillna(0.0).where(vol_std.notna()),
            "hour_sin": np.sin(2 * np.pi * hour / 24),
            "hour_cos": np.cos(2 * np.pi * hour / 24),
            "dow_sin": np.sin(2 * np.pi * dow / 7),
            "dow_cos": np.cos(2 * np.pi * dow / 7),
        }
    )


def _holed(n: int, seed: int, start: int = START) -> pd.DataFrame:
    c = synthetic_candles("ETH/USDT", start, n, seed=seed)
    c = c.drop(index=[50, 51, 52, 140, 300]).reset_index(drop=True)  # an outage and two single holes
    c.loc[200:230, "volume"] = 7.0  # a flat volume window: its z-score is 0
    return c


def _shifted(c: pd.DataFrame, by_ms: int) -> pd.DataFrame:
    return c.assign(timestamp=c["timestamp"] + by_ms)


CASES = {
    "holes and a flat volume stretch": lambda: _holed(600, 1),
    "200 candles, as one serving request": lambda: _holed(600, 2).tail(200).reset_index(drop=True),
    "fewer candles than the window": lambda: synthetic_candles("BTC/USDT", START, 9, seed=3),
    "off the hour": lambda: _shifted(synthetic_candles("BTC/USDT", START, 300, seed=4), 17 * 60_000),
    "before 1970": lambda: _shifted(
        synthetic_candles("BTC/USDT", START, 300, seed=5), 5 * 60_000 - START - 40 * 24 * HOUR
    ),
    "integer prices": lambda: synthetic_candles("BTC/USDT", START, 300, seed=6).astype(
        {"open": "int64", "high": "int64", "low": "int64", "close": "int64"}
    ),
}


@pytest.mark.parametrize("vol_window", [2, 5, 24])
@pytest.mark.parametrize("case", sorted(CASES))
def test_numpy_features_equal_the_pandas_version_bit_for_bit(case, vol_window):
    candles = CASES[case]()
    cfg = FeatureConfig(vol_window=vol_window)
    expected = _pandas_candle_features(candles, cfg, HOUR)
    got = _candle_features(candles, cfg, HOUR)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_the_cases_exercise_what_they_claim():
    """Not vacuous: the holed frame really has NaN returns after holes, zero z-scores and defined volatility."""
    feats = _candle_features(_holed(600, 1), FeatureConfig(vol_window=24), HOUR)
    assert feats["ret_1"].isna().sum() == 1 + 3  # the first row and the row after each hole
    assert (feats["volume_z"] == 0.0).sum() >= 5
    assert feats["rvol"].iloc[60:].notna().all()  # half a window suffices after the outage
