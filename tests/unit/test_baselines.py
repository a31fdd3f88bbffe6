"""Baselines: each one does what a statistician means by it, on the shared interface."""

import numpy as np
import pandas as pd
import pytest

from candlecast.config import BacktestConfig, FeatureConfig
from candlecast.features.compute import series_features
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.baselines import BASELINES, make_baseline, season_length
from candlecast.forecasting.splits import walk_forward

HOUR = 3_600_000
START = 1_704_067_200_000
FC = FeatureConfig(lookback=24, horizon=6, vol_window=12)


def candles_from_log_close(log_close: np.ndarray) -> pd.DataFrame:
    close = np.exp(log_close)
    open_ = np.concatenate([[close[0]], close[:-1]])
    return pd.DataFrame(
        {
            "timestamp": START + np.arange(len(close), dtype=np.int64) * HOUR,
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": 1.0 + np.arange(len(close)) % 7,
        }
    )


def arrays(log_close: np.ndarray, fc: FeatureConfig = FC, name: str = "s") -> SeriesArrays:
    out = SeriesArrays.from_frame(name, series_features(candles_from_log_close(log_close), fc, "1h"), fc.horizon)
    out.mark_windows(fc.lookback, HOUR)
    return out


def one_fold(s: SeriesArrays, n_test: int = 400, n_val: int = 400):
    return walk_forward(int(s.timestamps[0]), int(s.timestamps[-1]), HOUR, 30, 1, n_test, n_val, n_val)[0]


def fitted(name: str, s: SeriesArrays, fold, **kw):
    model = make_baseline(name, FC.lookback, FC.horizon, HOUR, **kw)
    model.fit([s.until(fold.val.end)], fold)
    return model


def test_registry_and_config_agree():
    assert set(BASELINES) == {"naive", "drift", "snaive", "ridge", "arima", "ets", "prophet"}
    with pytest.raises(ValueError, match="Input should be .naive."):
        BacktestConfig(baselines=["naive", "garch"])
    assert season_length(HOUR) == 24 and season_length(86_400_000) == 7


def test_naive_and_drift():
    rng = np.random.default_rng(0)
    s = arrays(np.cumsum(0.001 + rng.normal(0, 0.01, 3000)))
    fold = one_fold(s)
    rows = s.sample_rows(fold.test)
    assert not fitted("naive", s, fold).forecast(s, rows)[0].any()
    drift = fitted("drift", s, fold)
    train = fold.train.mask(s.timestamps)
    mu = np.mean(np.diff(np.log(s.close[train])))
    np.testing.assert_allclose(drift.forecast(s, rows[:2])[0], [mu * np.arange(1, 7)] * 2)
    assert mu == pytest.approx(0.001, abs=0.0005)


def test_seasonal_naive_is_exact_on_a_pure_daily_cycle():
    hours = np.arange(3000)
    s = arrays(4.0 + 0.02 * np.sin(2 * np.pi * hours / 24))
    fold = one_fold(s)
    rows = s.sample_rows(fold.test)
    point, _ = fitted("snaive", s, fold).forecast(s, rows)
    np.testing.assert_allclose(point, s.targets[rows], atol=1e-9)


def test_ridge_recovers_a_linear_autoregression():
    """AR(1) returns with phi 0.5: the best linear forecast's one-step RMSE is the noise (ratio sqrt(0.75))."""
    rng = np.random.default_rng(1)
    r = np.zeros(6000)
    eps = rng.normal(0, 0.01, 6000)
    for t in range(1, 6000):
        r[t] = 0.5 * r[t - 1] + eps[t]
    s = arrays(np.cumsum(r))
    fold = one_fold(s, n_test=800, n_val=1500)  # the penalty is chosen on validation: give it enough
    ridge = fitted("ridge", s, fold)
    rows = s.sample_rows(fold.test)
    point, _ = ridge.forecast(s.inputs_only(), rows)
    one_step = np.sqrt(np.mean((s.targets[rows, 0] - point[:, 0]) ** 2))
    assert one_step == pytest.approx(0.01, rel=0.08)
    # the k-step forecast of an AR(1) is phi (1 - phi^k) / (1 - phi) times the last return
    ret_now = np.diff(np.log(s.close))[rows - 1]
    slope = np.polyfit(ret_now, point[:, 2], 1)[0]
    assert slope == pytest.approx(0.5 * (1 - 0.5**3) / 0.5, rel=0.15)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["arima", "ets", "prophet"])
def test_statistical_baselines_learn_a_daily_cycle(name):
    """On a noisy daily cycle every seasonal model must beat the random walk clearly."""
    rng = np.random.default_rng(2)
    hours = np.arange(2500)
    s = arrays(4.0 + 0.02 * np.sin(2 * np.pi * hours / 24) + np.cumsum(rng.normal(0, 0.002, 2500)))
    fold = one_fold(s, n_test=240, n_val=240)
    model = fitted(name, s, fold, stat_window=600)
    rows = s.sample_rows(fold.test)[::4]
    point, bounds = model.forecast(s.inputs_only(), rows)
    assert point.shape == (len(rows), FC.horizon) and bounds is None and np.isfinite(point).all()
    y = s.targets[rows]
    assert np.sqrt(np.mean((y - point) ** 2)) < 0.6 * np.sqrt(np.mean(y**2))  # a random walk scores 1.0


def test_a_statistical_baseline_with_too_little_history_says_so():
    s = arrays(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 1000)))
    fold = walk_forward(int(s.timestamps[0]), int(s.timestamps[-1]), HOUR, 30, 1, 200, 200, 200)[0]
    gappy = s.until(fold.val.end)
    keep = np.ones(len(gappy.timestamps), dtype=bool)
    keep[-250] = False  # a missing candle late in the training range: only ~40 contiguous candles before its end
    cut = SeriesArrays(gappy.name, gappy.timestamps[keep], gappy.features[keep], gappy.targets[keep], gappy.close[keep])
    with pytest.raises(ValueError, match="contiguous training candles"):
        make_baseline("ets", FC.lookback, FC.horizon, HOUR, stat_window=100).fit([cut], fold)
