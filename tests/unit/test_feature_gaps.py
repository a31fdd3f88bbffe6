"""One missing candle: returns never bridge it, and the higher-timeframe context survives it."""

import numpy as np
import pandas as pd

from candlecast.config import FeatureConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import compute_features

HOUR = 3_600_000
START = 1_704_067_200_000
CFG = FeatureConfig(indicators=True, higher_timeframes=["4h", "1d"], return_lags=[4, 24])


def _with_gap(at: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    full = synthetic_candles("BTC/USDT", START, 24 * 40, seed=3)
    return full, full.drop(index=at).reset_index(drop=True)


def test_returns_never_bridge_a_missing_candle():
    full, gapped = _with_gap(500)
    feats = compute_features(gapped, CFG, "1h").set_index("timestamp")
    after = int(full["timestamp"][501])  # the first candle after the hole
    assert np.isnan(feats.loc[after, "ret_1"])
    assert np.isnan(feats.loc[after, "ret_4"]) and np.isnan(feats.loc[int(full["timestamp"][503]), "ret_4"])
    assert np.isnan(feats.loc[int(full["timestamp"][504]), "ret_4"])  # would reach back across the hole
    assert np.isfinite(feats.loc[int(full["timestamp"][505]), "ret_4"])  # 4 candles after the hole: defined again
    assert np.isfinite(feats.loc[int(full["timestamp"][502]), "ret_1"])
    assert np.isfinite(feats.loc[after, "rvol"])  # the rolling volatility keeps going on the candles it has


def test_higher_timeframe_context_survives_one_missing_candle():
    full, gapped = _with_gap(500)  # hour 20 of day 20: inside a 4h and a 1d bucket
    clean = compute_features(full, CFG, "1h").set_index("timestamp")
    holed = compute_features(gapped, CFG, "1h").set_index("timestamp")
    htf = [c for c in clean.columns if c.startswith("htf_")]
    # from two days after the hole on, every higher-timeframe feature is defined, and away from the
    # damaged buckets it equals the clean series' value
    later = holed.index[holed.index >= int(full["timestamp"][500]) + 2 * 24 * HOUR]
    assert holed.loc[later, htf].notna().all().all()
    far = later[later >= int(full["timestamp"][500]) + 12 * 24 * HOUR]
    pd.testing.assert_frame_equal(holed.loc[far, htf], clean.loc[far, htf])
