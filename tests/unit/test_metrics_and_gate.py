"""Metrics: the values, the conformal calibration, the Diebold-Mariano test."""

import numpy as np
import pytest

from candlecast.forecasting.calibration import Calibration
from candlecast.forecasting.metrics import diebold_mariano, forecast_metrics, interval_metrics, pinball


def test_metric_values():
    y = np.array([[0.02, -0.01]])
    p = np.array([[0.01, 0.01]])
    m = forecast_metrics(y, p, close=np.array([100.0]), scale_mae=0.01, scale_rmse=0.02)
    assert m["mae"] == pytest.approx(0.015)
    assert m["rmse"] == pytest.approx(np.sqrt((0.01**2 + 0.02**2) / 2))
    assert m["mase"] == pytest.approx(1.5)
    assert m["rmsse"] == pytest.approx(m["rmse"] / 0.02)
    assert m["directional_accuracy"] == pytest.approx(0.5)
    price_true, price_pred = 100 * np.exp(y[0]), 100 * np.exp(p[0])
    assert m["price_mae"] == pytest.approx(np.mean(np.abs(price_true - price_pred)))
    assert m["price_mape"] == pytest.approx(np.mean(np.abs(price_true - price_pred) / price_true))


def test_pinball_is_minimised_by_the_true_quantile():
    y = np.random.default_rng(0).normal(size=20_000)
    losses = {q: pinball(y, np.full_like(y, q), 0.9) for q in (0.8, 1.0, 1.2816, 1.6, 2.0)}
    assert min(losses, key=losses.get) == 1.2816


def test_conformal_interval_covers_about_its_level_on_unseen_data():
    rng = np.random.default_rng(2)
    calib, test = rng.standard_t(4, (4000, 2)), rng.standard_t(4, (4000, 2))
    cal = Calibration.fit(calib, np.zeros_like(calib), None, 0.8)
    lower, upper = cal.apply(np.zeros_like(test), None)
    assert interval_metrics(test, np.zeros_like(test), lower, upper, 0.8)["coverage"] == pytest.approx(0.8, abs=0.02)


def test_conformal_adjustment_repairs_too_narrow_quantiles():
    """CQR: raw quantile bounds that cover only ~40% are widened to cover ~80% of new data."""
    rng = np.random.default_rng(3)
    bounds = np.stack([np.full((4000, 1), -0.5), np.full((4000, 1), 0.5)], axis=-1)  # covers ~38% of N(0, 1)
    calib, test = rng.normal(size=(4000, 1)), rng.normal(size=(4000, 1))
    cal = Calibration.fit(calib, np.zeros_like(calib), bounds, 0.8)
    lower, upper = cal.apply(np.zeros_like(test), bounds)
    assert np.mean((test >= -0.5) & (test <= 0.5)) < 0.45
    assert interval_metrics(test, np.zeros_like(test), lower, upper, 0.8)["coverage"] == pytest.approx(0.8, abs=0.02)


def test_diebold_mariano_separates_signal_from_noise():
    rng = np.random.default_rng(4)
    signal = rng.normal(0, 0.01, (3000, 4))
    y = signal + rng.normal(0, 0.01, signal.shape)
    stat, p = diebold_mariano(y - signal, y, lag=3)
    assert stat < -5 and p < 1e-6
    stat, p = diebold_mariano(y - rng.normal(0, 0.001, y.shape), y, lag=3)  # a noise "forecast": no better
    assert p > 0.05
