"""Features are causal: truncating the data at t never changes a feature row before t."""

import numpy as np
import pandas as pd
import pytest

from candlecast.config import FeatureConfig
from candlecast.features import FEATURE_COLUMNS, add_targets, compute_features, target_columns
from candlecast.synthetic import synthetic_candles

START = 1_704_067_200_000  # 2024-01-01
HOUR = 3_600_000
CFG = FeatureConfig(lookback=16, horizon=4, vol_window=12)


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return synthetic_candles("BTC/USDT", START, 600, seed=3)


def test_no_look_ahead_on_synthetic(candles):
    full = compute_features(candles, CFG)
    for cut in (50, 200, 599):
        part = compute_features(candles.iloc[:cut], CFG)
        pd.testing.assert_frame_equal(part, full.iloc[:cut])


def test_no_look_ahead_on_real_data(shared_data):
    real = pd.read_csv(shared_data / "binance" / "binance_BTC-USDT_1h.csv.gz").tail(3000).reset_index(drop=True)
    full = compute_features(real, CFG)
    for cut in (100, 1500, 2999):
        pd.testing.assert_frame_equal(compute_features(real.iloc[:cut], CFG), full.iloc[:cut])


def test_features_defined_after_warmup(candles):
    feats = compute_features(candles, CFG)
    assert list(feats.columns) == ["timestamp", "close", *FEATURE_COLUMNS]
    assert np.isfinite(feats[FEATURE_COLUMNS].iloc[CFG.vol_window + 1 :]).all().all()
    assert feats["ret_1"].isna().iloc[0]


def test_targets_are_cumulative_forward_log_returns(candles):
    out = add_targets(compute_features(candles, CFG), CFG.horizon, "1h")
    close = candles["close"].to_numpy()
    t = 100
    for k in range(1, CFG.horizon + 1):
        assert out.loc[t, f"target_{k}"] == pytest.approx(np.log(close[t + k] / close[t]))
    # the last H rows have no complete future
    assert out[target_columns(CFG.horizon)].iloc[-1].isna().all()


def test_targets_never_bridge_a_gap(candles):
    gappy = candles.drop(index=[300]).reset_index(drop=True)  # candle at row 300 missing
    out = add_targets(compute_features(gappy, CFG), CFG.horizon, "1h")
    # row 299 (before the gap): every target would span the missing hour
    assert out.loc[299, target_columns(CFG.horizon)].isna().all()
    # row 296: three steps stay before the gap, the fourth would cross it
    assert np.isfinite(out.loc[296, "target_3"])
    assert np.isnan(out.loc[296, "target_4"])


def test_missing_columns_are_named(candles):
    with pytest.raises(ValueError, match="volume"):
        compute_features(candles.drop(columns=["volume"]), CFG)
