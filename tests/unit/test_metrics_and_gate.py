import numpy as np
import pytest

from candlecast.metrics import compare_with_naive, coverage, forecast_metrics, residual_quantiles


def test_naive_is_the_zero_forecast():
    rng = np.random.default_rng(0)
    y = rng.normal(0, 0.01, (500, 4))
    out = compare_with_naive(y, np.zeros_like(y), naive_scale=0.01)
    assert out["rmse_ratio"] == pytest.approx(1.0)
    assert out["test_rmse"] == pytest.approx(out["naive_rmse"])


def test_a_forecast_with_signal_beats_naive():
    rng = np.random.default_rng(1)
    signal = rng.normal(0, 0.01, (2000, 3))
    y = signal + rng.normal(0, 0.01, signal.shape)
    out = compare_with_naive(y, signal, naive_scale=0.01)
    assert out["rmse_ratio"] < 0.8
    assert out["test_directional_accuracy"] > 0.6


def test_metric_values():
    y = np.array([[0.02, -0.01]])
    p = np.array([[0.01, 0.01]])
    m = forecast_metrics(y, p, naive_scale=0.01)
    assert m["mae"] == pytest.approx(0.015)
    assert m["rmse"] == pytest.approx(np.sqrt((0.01**2 + 0.02**2) / 2))
    assert m["mase"] == pytest.approx(1.5)
    assert m["directional_accuracy"] == pytest.approx(0.5)


def test_conformal_interval_covers_about_its_level():
    rng = np.random.default_rng(2)
    calib, test = rng.standard_t(4, (4000, 2)), rng.standard_t(4, (4000, 2))
    lower, upper = residual_quantiles(calib, np.zeros_like(calib), 0.8)
    assert coverage(test, np.zeros_like(test), lower, upper) == pytest.approx(0.8, abs=0.03)
