"""Features: the indicators are what they claim, context joins are point in time, targets are raw."""

import numpy as np
import pandas as pd
import pytest

from candlecast.config import ExogenousConfig, FeatureConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import (
    FEATURE_COLUMNS,
    add_targets,
    compute_features,
    cross_key,
    feature_columns,
    hampel,
    series_features,
    target_columns,
    warmup_rows,
)

START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
HOUR = 3_600_000
BASIC = FeatureConfig(lookback=16, horizon=4, vol_window=12)
FULL = FeatureConfig(lookback=16, horizon=4, vol_window=12, indicators=True, higher_timeframes=["4h", "1d"])


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return synthetic_candles("BTC/USDT", START, 600, seed=3)


def test_basic_set_is_the_skeletons(candles):
    feats = compute_features(candles, BASIC)
    assert feature_columns(feats) == FEATURE_COLUMNS
    assert np.isfinite(feats[FEATURE_COLUMNS].iloc[BASIC.vol_window + 1 :]).all().all()
    assert feats["ret_1"].isna().iloc[0]


def test_full_set_is_defined_after_its_warmup(candles):
    feats = compute_features(candles, FULL)
    cols = feature_columns(feats)
    for name in ("ret_4", "ret_24", "ma_ratio_48", "rsi", "macd", "macd_signal", "macd_hist", "bb_pctb", "atr"):
        assert name in cols
    assert {"htf_4h_ret", "htf_1d_rvol"} <= set(cols)
    assert np.isfinite(feats[cols].iloc[warmup_rows(FULL) :]).all().all()


def test_indicator_values(candles):
    feats = compute_features(candles, FULL)
    close = candles["close"].to_numpy()
    t = 300
    assert feats.loc[t, "ret_24"] == pytest.approx(np.log(close[t] / close[t - 24]))
    assert feats.loc[t, "ma_ratio_12"] == pytest.approx(np.log(close[t] / close[t - 11 : t + 1].mean()))
    window = close[t - 19 : t + 1]
    lower, upper = window.mean() - 2 * window.std(ddof=1), window.mean() + 2 * window.std(ddof=1)
    assert feats.loc[t, "bb_pctb"] == pytest.approx((close[t] - lower) / (upper - lower))
    assert (feats["rsi"].dropna().abs() <= 1).all()
    np.testing.assert_allclose(feats["macd_hist"], feats["macd"] - feats["macd_signal"])


def test_higher_timeframe_uses_only_closed_candles(candles):
    feats = compute_features(candles, FULL)
    close = candles["close"].to_numpy()
    # rows 0..3 form the first 4h candle (00:00-04:00); it closes with row 3, the second with row 7
    t = 9  # 09:00 candle: the last closed 4h candle is 04:00-08:00 (rows 4..7), return vs rows 0..3
    assert feats.loc[t, "htf_4h_ret"] == pytest.approx(np.log(close[7] / close[3]))
    assert feats.loc[7, "htf_4h_ret"] == pytest.approx(np.log(close[7] / close[3]))  # visible at its close
    assert feats.loc[6, "htf_4h_ret"] != pytest.approx(np.log(close[7] / close[3]))  # not a candle earlier


def test_higher_timeframe_bucket_with_a_gap_is_built_from_the_candles_it_has(candles):
    gappy = candles.drop(index=[5]).reset_index(drop=True)  # 05:00 missing: the 04:00-08:00 bucket is partial
    feats = compute_features(gappy, FULL)
    # row 6 is 07:00 after the drop: the partial bucket's close, like an exchange's 4h candle through an outage
    partial = candles.iloc[[4, 6, 7]]
    assert feats.loc[6, "htf_4h_range"] == np.log(partial["high"].max() / partial["low"].min())
    assert np.isfinite(feats.loc[10, "htf_4h_range"])  # the next bucket (08:00-12:00) is fine
    cut = compute_features(candles.iloc[1:].reset_index(drop=True), FULL)  # the frame starts inside a bucket
    assert np.isnan(cut.loc[2, "htf_4h_range"])  # the cut first bucket (00:00-04:00) is never used


def test_cross_asset_joins_the_same_candle(candles):
    eth = synthetic_candles("ETH/USDT", START, 600, seed=4)
    cfg = FeatureConfig(cross_assets=["BTC/USDT"], vol_window=12)
    feats = compute_features(eth, cfg, cross={"BTC/USDT": candles.drop(index=[100])})
    key = cross_key("BTC/USDT")
    close = candles["close"].to_numpy()
    assert feats.loc[50, f"{key}_ret_1"] == pytest.approx(np.log(close[50] / close[49]))
    assert np.isnan(feats.loc[100, f"{key}_ret_1"]) and np.isnan(feats.loc[101, f"{key}_ret_1"])
    with pytest.raises(ValueError, match="BTC/USDT"):
        compute_features(eth, cfg)


def test_exogenous_value_reaches_only_candles_closing_after_publication(candles, tmp_path):
    path = tmp_path / "sentiment.csv"
    pd.DataFrame({"timestamp": [START + 10 * HOUR, START + 20 * HOUR], "fear_greed": [30.0, 70.0]}).to_csv(path)
    cfg = FeatureConfig(vol_window=12, exogenous=[ExogenousConfig(path=path, delay_ms=HOUR)])
    feats = series_features(candles, cfg, "1h")
    col = "exo_sentiment_fear_greed"
    # stamped 10:00, known 11:00: the 10:00 candle (closes 11:00) is the first to see it
    assert np.isnan(feats.loc[9, col]) and feats.loc[10, col] == 30.0
    assert feats.loc[19, col] == 30.0 and feats.loc[20, col] == 70.0


def test_exogenous_file_errors_name_the_problem(tmp_path):
    from candlecast.features.exogenous import read_exogenous

    with pytest.raises(ValueError, match="does not exist"):
        read_exogenous(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"time": [1], "x": [1.0]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="timestamp"):
        read_exogenous(bad)


def test_hampel_replaces_spikes_and_keeps_ordinary_values():
    x = pd.Series(np.sin(np.arange(200) / 5.0))
    spiked = x.copy()
    spiked[150] = 50.0
    out = hampel(spiked, window=24, sigmas=4.0)
    assert abs(out[150]) < 2
    pd.testing.assert_series_equal(out.iloc[30:150], x.iloc[30:150], check_names=False)


def test_hampel_is_applied_to_inputs_never_to_targets(candles):
    spiked = candles.copy()
    spiked.loc[300, "close"] *= 1.5
    spiked.loc[300, "high"] *= 1.5
    cfg = BASIC.model_copy(update={"denoise": "hampel"})
    out = add_targets(compute_features(spiked, cfg), cfg.horizon, "1h")
    raw = add_targets(compute_features(spiked, BASIC), BASIC.horizon, "1h")
    assert abs(out.loc[300, "ret_1"]) < 0.1 < abs(raw.loc[300, "ret_1"])
    pd.testing.assert_frame_equal(out[target_columns(4)], raw[target_columns(4)])


def test_targets_are_cumulative_forward_log_returns(candles):
    out = add_targets(compute_features(candles, BASIC), BASIC.horizon, "1h")
    close = candles["close"].to_numpy()
    t = 100
    for k in range(1, BASIC.horizon + 1):
        assert out.loc[t, f"target_{k}"] == pytest.approx(np.log(close[t + k] / close[t]))
    assert out[target_columns(BASIC.horizon)].iloc[-1].isna().all()


def test_targets_never_bridge_a_gap(candles):
    gappy = candles.drop(index=[300]).reset_index(drop=True)
    out = add_targets(compute_features(gappy, BASIC), BASIC.horizon, "1h")
    assert out.loc[299, target_columns(BASIC.horizon)].isna().all()
    assert np.isfinite(out.loc[296, "target_3"])
    assert np.isnan(out.loc[296, "target_4"])


def test_missing_columns_are_named(candles):
    with pytest.raises(ValueError, match="volume"):
        compute_features(candles.drop(columns=["volume"]), BASIC)


def test_bad_higher_timeframe_is_a_clear_error(candles):
    with pytest.raises(ValueError, match="multiple"):
        compute_features(candles, FeatureConfig(higher_timeframes=["90m"]), "1h")
