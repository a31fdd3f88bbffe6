"""On a process with a known learnable part, the LSTM's error reaches the floor the noise allows.

The returns follow a nonlinear autoregression r_t = s * z_t with
    z_t = 0.8 sin(2.5 z_{t-1}) - 0.5 tanh(2 z_{t-2}) |z_{t-1}| + e_t,  e_t ~ N(0, 0.3^2),
so the best possible one-step forecast has RMSE 0.3 s (the noise floor), the random walk about
0.57 s and the best linear autoregression about 0.49 s. The LSTM must come within 6% of the
floor, and beat the linear model on the same windows.
"""

import numpy as np
import pandas as pd
import pytest

from candlecast.config import FeatureConfig, TrainConfig
from candlecast.features.compute import series_features
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.baselines import make_baseline
from candlecast.forecasting.neural import NeuralForecaster
from candlecast.forecasting.retrain import STALE
from candlecast.forecasting.splits import walk_forward
from candlecast.forecasting.targets import Walk
from candlecast.forecasting.targets.returns import RETURNS
from candlecast.forecasting.walkforward import backtest

pytestmark = pytest.mark.slow

HOUR = 3_600_000
SCALE, NOISE = 0.01, 0.3
FLOOR = SCALE * NOISE  # RMSE of the true conditional mean
TOLERANCE = 0.06


def nonlinear_ar(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z, eps = np.zeros(n), rng.normal(0, NOISE, n)
    for t in range(2, n):
        z[t] = 0.8 * np.sin(2.5 * z[t - 1]) - 0.5 * np.tanh(2 * z[t - 2]) * abs(z[t - 1]) + eps[t]
    return SCALE * z


def test_lstm_reaches_the_noise_floor():
    r = nonlinear_ar(9000)
    close = 100 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]])
    candles = pd.DataFrame(
        {
            "timestamp": 1_704_067_200_000 + np.arange(len(r), dtype=np.int64) * HOUR,
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": 1.0,
        }
    )
    fc = FeatureConfig(lookback=8, horizon=1, vol_window=12)
    s = SeriesArrays.from_frame("nlar", series_features(candles, fc, "1h"), fc.horizon)
    s.mark_windows(fc.lookback, HOUR)
    fold = walk_forward(int(s.timestamps[0]), int(s.timestamps[-1]), HOUR, 10, 1, n_test=1500, n_val=1000, n_cal=1000)
    train = TrainConfig(max_epochs=30, patience=4, batch_size=128, threads=1)
    factories = {
        "lstm": lambda: NeuralForecaster(
            "lstm", {"hidden_size": 32, "lr": 3e-3}, fc.lookback, fc.horizon, train, [0.1, 0.9]
        ),
        "ridge": lambda: make_baseline("ridge", fc.lookback, fc.horizon, HOUR),
    }
    result = backtest(
        RETURNS, factories, [s], fold, Walk(step_ms=HOUR, horizon=fc.horizon, interval=0.8, refit=STALE)
    )  # the model, not the refit
    lstm, ridge = result.summary.loc["lstm"], result.summary.loc["ridge"]
    assert lstm["rmse"] <= FLOOR * (1 + TOLERANCE), f"LSTM RMSE {lstm['rmse']:.5f} vs floor {FLOOR:.5f}"
    assert lstm["rmse"] < 0.8 * ridge["rmse"]  # the nonlinear part was learned, not just the linear one
    assert lstm["coverage"] == pytest.approx(0.8, abs=0.05)
