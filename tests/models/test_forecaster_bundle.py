"""The bundle carries everything (features config, scaler, quantiles, calibration): raw candles in, forecasts out."""

from dataclasses import asdict

import numpy as np
import pytest

from candlecast.config import FeatureConfig, TrainConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import series_features
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.calibration import Calibration
from candlecast.forecasting.neural import NeuralForecaster
from candlecast.forecasting.splits import walk_forward
from candlecast.registry.bundle import BundleSpec, ModelBundle

HOUR = 3_600_000
FC = FeatureConfig(lookback=12, horizon=4, vol_window=12, indicators=True, higher_timeframes=["4h"])


@pytest.fixture(scope="module")
def trained():
    candles = synthetic_candles("BTC/USDT", 1_704_067_200_000, 1500, seed=9)
    s = SeriesArrays.from_frame("btc", series_features(candles, FC, "1h"), FC.horizon)
    s.mark_windows(FC.lookback, HOUR)
    fold = walk_forward(int(s.timestamps[0]), int(s.timestamps[-1]), HOUR, 20, 1, 200, 200, 200)[0]
    model = NeuralForecaster(
        "cnn_lstm", {"hidden_size": 8}, FC.lookback, FC.horizon, TrainConfig(max_epochs=1, threads=1), [0.1, 0.9]
    )
    model.fit([s.until(fold.val.end)], fold)
    rows = s.sample_rows(fold.val)
    point, bounds = model.forecast(s.inputs_only(), rows)
    calibration = Calibration.fit(s.targets[rows], point, bounds, 0.8)
    spec = BundleSpec(
        model_name="cnn_lstm",
        hparams={"hidden_size": 8},
        features=FC.model_dump(mode="json"),
        timeframe="1h",
        scaler=asdict(model.result.scaler),
        columns=s.columns,
        quantiles=[0.1, 0.9],
        calibration=asdict(calibration),
    )
    return candles, s, model, ModelBundle(spec, model.result.model)


def test_saved_bundle_predicts_from_raw_candles_like_the_training_pipeline(trained, tmp_path):
    candles, s, model, forecaster = trained
    loaded = ModelBundle.load(forecaster.save(tmp_path / "bundle"))
    out = loaded.predict(candles.tail(loaded.spec.min_candles + 1))
    assert list(out["step"]) == [1, 2, 3, 4]
    assert (out["lower"] <= out["forecast"]).all() and (out["forecast"] <= out["upper"]).all()
    assert out["timestamp"].iloc[0] == candles["timestamp"].iloc[-1] + HOUR
    # the same window through the training-side path: features on all history, the fitted model
    expected, _ = model.forecast(s.inputs_only(), np.array([len(s.timestamps) - 1]))
    np.testing.assert_allclose(out["forecast_log_return"], expected[0], rtol=0.02, atol=2e-4)


def test_too_few_candles_is_a_clear_error(trained):
    candles, _, _, forecaster = trained
    with pytest.raises(ValueError, match="at least"):
        forecaster.predict(candles.tail(20))
