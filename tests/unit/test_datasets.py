"""Scalers see only training rows; windows never bridge a missing candle."""

import numpy as np
import pandas as pd
import pytest

from candlecast.config import FeatureConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import FEATURE_COLUMNS, add_targets, compute_features
from candlecast.features.windows import Scaler, SeriesArrays, WindowDataset, fit_scaler, make_loader
from candlecast.schema import Range

HOUR = 3_600_000
START = 1_704_067_200_000
CFG = FeatureConfig(lookback=8, horizon=3, vol_window=6)


def _arrays(candles: pd.DataFrame) -> SeriesArrays:
    frame = add_targets(compute_features(candles, CFG), CFG.horizon, "1h")
    arrays = SeriesArrays.from_frame("s", frame, CFG.horizon)
    arrays.mark_windows(CFG.lookback, HOUR)
    return arrays


def test_scaler_ignores_everything_after_training():
    candles = synthetic_candles("BTC/USDT", START, 400, seed=1)
    train = Range(START, START + 199 * HOUR)
    base = fit_scaler([_arrays(candles)], train)
    wild = candles.copy()
    wild.loc[250:, ["open", "high", "low", "close"]] *= 50.0  # a regime change after the training range
    wild.loc[250:, "volume"] *= 1000.0
    assert fit_scaler([_arrays(wild)], train) == base


def test_windows_skip_gaps_and_warmup():
    candles = synthetic_candles("BTC/USDT", START, 200, seed=2).drop(index=[100]).reset_index(drop=True)
    arrays = _arrays(candles)
    ends = np.flatnonzero(arrays.valid_end)
    assert ends.min() >= CFG.vol_window + CFG.lookback - 1  # features need warm-up, then a full window
    for t in ends:
        span = arrays.timestamps[t] - arrays.timestamps[t - CFG.lookback + 1]
        assert span == (CFG.lookback - 1) * HOUR
    # windows ending right after the gap (rows 100..106 after the drop) are not valid
    assert not arrays.valid_end[100 : 100 + CFG.lookback - 1].any()


def test_dataset_batches_match_single_items():
    arrays = _arrays(synthetic_candles("ETH/USDT", START, 300, seed=3))
    scaler = fit_scaler([arrays], Range(START, START + 299 * HOUR))
    rows = arrays.sample_rows(Range(START, START + 299 * HOUR))
    ds = WindowDataset([arrays, arrays], [rows, rows[:10]], scaler, CFG.lookback)
    assert len(ds) == len(rows) + 10
    x, y = next(iter(make_loader(ds, 16, shuffle=False)))
    assert x.shape == (16, CFG.lookback, len(FEATURE_COLUMNS)) and y.shape == (16, CFG.horizon)
    x0, y0 = ds[0]
    expected = scaler.transform(arrays.features[rows[0] - CFG.lookback + 1 : rows[0] + 1])
    np.testing.assert_allclose(x0.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(y0.numpy(), arrays.targets[rows[0]] / np.asarray(scaler.target_scale), rtol=1e-6)


def test_sample_rows_need_complete_targets():
    arrays = _arrays(synthetic_candles("BTC/USDT", START, 100, seed=4))
    everything = Range(START, START + 99 * HOUR)
    with_targets = arrays.sample_rows(everything)
    assert with_targets.max() == 99 - CFG.horizon
    assert arrays.sample_rows(everything, need_targets=False).max() == 99


def test_winsorizing_bounds_come_from_training_rows_only():
    candles = synthetic_candles("BTC/USDT", START, 400, seed=5)
    train = Range(START, START + 199 * HOUR)
    base = fit_scaler([_arrays(candles)], train, winsor_quantile=0.01)
    wild = candles.copy()
    wild.loc[300, ["close", "high"]] *= 3.0  # an outlier after training
    assert fit_scaler([_arrays(wild)], train, winsor_quantile=0.01) == base
    ret = base.transform(np.full((1, len(FEATURE_COLUMNS)), 10.0))  # far outside every training value
    upper = base.transform(np.asarray([base.upper]))
    np.testing.assert_allclose(ret, upper)


def test_targets_are_scaled_but_never_clipped():
    arrays = _arrays(synthetic_candles("BTC/USDT", START, 300, seed=6))
    arrays.targets[150, 0] = 5.0  # a huge move
    scaler = fit_scaler([arrays], Range(START, START + 299 * HOUR), winsor_quantile=0.05)
    ds = WindowDataset([arrays], [np.array([150])], scaler, CFG.lookback)
    assert ds[0][1][0].item() == pytest.approx(5.0 / scaler.target_scale[0], rel=1e-6)


def test_constant_columns_do_not_divide_by_zero():
    fitted = Scaler.fit(np.ones((10, 2)), np.zeros((10, 3)))
    assert fitted.std == [1.0, 1.0]
    assert fitted.target_scale == [1.0, 1.0, 1.0]
    assert np.isfinite(fitted.transform(np.ones((3, 2)))).all()


def test_every_horizon_step_gets_an_equal_say_in_the_loss():
    """Each step's cumulative return is scaled by its own spread: scaled targets have unit RMS at every step."""
    arrays = _arrays(synthetic_candles("BTC/USDT", START, 2000, seed=7))
    train = Range(START, START + 1999 * HOUR)
    scaler = fit_scaler([arrays], train)
    assert scaler.target_scale[-1] > 1.4 * scaler.target_scale[0]  # a 3-step return moves about sqrt(3) times more
    rows = arrays.sample_rows(train)
    ds = WindowDataset([arrays], [rows], scaler, CFG.lookback)
    _, y = ds.__getitems__(list(range(len(ds))))
    rms = np.sqrt(np.mean(y.numpy() ** 2, axis=0))
    np.testing.assert_allclose(rms, 1.0, rtol=0.05)
