"""QLIKE and the Value-at-Risk tests against values worked out by hand."""

import numpy as np
import pytest
from scipy import stats

from candlecast.forecasting.risk_metrics import (
    christoffersen,
    confidence_set,
    kupiec,
    mse_log,
    qlike,
    tick_loss,
    var_report,
)


def test_qlike_is_zero_for_a_perfect_forecast_and_punishes_under_prediction_more():
    assert qlike(np.array([2.0]), np.array([2.0]))[0] == pytest.approx(0.0)
    under = qlike(np.array([2.0]), np.array([1.0]))[0]  # 2 - log 2 - 1
    over = qlike(np.array([2.0]), np.array([4.0]))[0]  # 0.5 - log 0.5 - 1
    assert under == pytest.approx(1 - np.log(2)) and over == pytest.approx(np.log(2) - 0.5)
    assert under > over
    assert mse_log(np.array([np.e**2]), np.array([1.0]))[0] == pytest.approx(4.0)
    # a window whose closes never moved has no variance proxy: no score, rather than an infinite one
    assert np.isnan(qlike(np.array([0.0]), np.array([1.0]))[0]) and np.isnan(
        mse_log(np.array([0.0]), np.array([1.0]))[0]
    )


def test_kupiec_by_hand():
    hits = np.zeros(250, dtype=bool)
    hits[:8] = True  # 8 hits in 250 days against a 1% VaR (2.5 expected)
    p_hat = 8 / 250
    expected = -2 * (8 * np.log(0.01) + 242 * np.log(0.99) - 8 * np.log(p_hat) - 242 * np.log(1 - p_hat))
    lr, p = kupiec(hits, 0.01)
    assert lr == pytest.approx(expected)
    assert p == pytest.approx(stats.chi2.sf(expected, 1)) and p < 0.01
    assert kupiec(np.zeros(100, dtype=bool), 0.01)[1] == pytest.approx(stats.chi2.sf(-2 * 100 * np.log(0.99), 1))


def test_christoffersen_by_hand():
    # hits in pairs: after a hit another hit is likely, which independence forbids
    hits = np.zeros(200, dtype=bool)
    for start in range(10, 200, 40):
        hits[start : start + 2] = True
    n01, n11, n10 = 5, 5, 5
    n00 = 199 - n01 - n11 - n10
    pi = (n01 + n11) / 199
    restricted = (n00 + n10) * np.log(1 - pi) + (n01 + n11) * np.log(pi)
    free = n00 * np.log(n00 / (n00 + n01)) + n01 * np.log(n01 / (n00 + n01)) + n10 * np.log(0.5) + n11 * np.log(0.5)
    lr, p = christoffersen(hits)
    assert lr == pytest.approx(-2 * (restricted - free))
    assert p < 0.001
    spread = np.zeros(200, dtype=bool)
    spread[::20] = True  # isolated hits: no clustering
    assert christoffersen(spread)[1] > 0.2


def test_tick_loss_and_the_report():
    r = np.array([-0.05, 0.01, 0.02, -0.01])
    q = np.full(4, -0.03)
    assert tick_loss(r, q, 0.05) == pytest.approx(np.mean([0.95 * 0.02, 0.05 * 0.04, 0.05 * 0.05, 0.05 * 0.02]))
    report = var_report(r, q, 0.05, "var95")
    assert report["var95_hit_rate"] == 0.25 and report["var95_windows"] == 4


def test_confidence_set_drops_a_clearly_worse_model_and_keeps_equal_ones():
    rng = np.random.default_rng(3)
    common = rng.gamma(2.0, 0.5, 1500)  # a loss level every model shares (a volatile hour is hard for all)
    losses = {
        "a": common + rng.normal(0, 0.2, 1500),
        "b": common + rng.normal(0, 0.2, 1500),  # as good as a
        "worse": common + 0.3 + rng.normal(0, 0.2, 1500),
    }
    losses["a"][5] = np.nan  # a window without a proxy counts for no model
    p = confidence_set(losses, block_size=10, reps=300)
    assert p["worse"] < 0.10 <= min(p["a"], p["b"])
    assert confidence_set(losses, block_size=10, reps=300) == p  # a fixed seed: the same set on every run
    with pytest.raises(ValueError, match="at least two"):
        confidence_set({"a": losses["a"]}, block_size=10)
