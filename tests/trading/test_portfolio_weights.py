"""Portfolio weights from forecast risk: the methods on a planted covariance, planted forecasts, timing, the engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from trading_helpers import HOUR, START, random_walk

from candlecast.trading.allocation import (
    WEIGHTS,
    clipped_min_variance_weights,
    equal_weights,
    forecast_covariance,
    min_variance_weights,
    risk_contributions,
    risk_parity_weights,
    shrunk_correlation,
)
from candlecast.trading.weighting import rebalance_weights

#: A planted covariance: volatilities 1%..5%, correlations 0.3..0.8 (positive definite).
SIGMA = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
CORR = np.array(
    [
        [1.0, 0.8, 0.5, 0.4, 0.3],
        [0.8, 1.0, 0.6, 0.5, 0.4],
        [0.5, 0.6, 1.0, 0.7, 0.5],
        [0.4, 0.5, 0.7, 1.0, 0.6],
        [0.3, 0.4, 0.5, 0.6, 1.0],
    ]
)
COV = forecast_covariance(SIGMA, CORR)


@pytest.mark.parametrize("method", list(WEIGHTS))
def test_weights_are_long_only_and_fully_invested(method):
    w = WEIGHTS[method](COV)
    assert w.sum() == pytest.approx(1.0, abs=1e-9)
    assert (w >= -1e-12).all()


def test_risk_parity_equalizes_risk_contributions():
    w = risk_parity_weights(COV)
    assert np.abs(risk_contributions(w, COV) - 0.2).max() < 1e-6
    assert (np.diff(w) < 0).all()  # the riskier the asset, the smaller its weight


def test_min_variance_beats_equal_weight_and_the_clipped_closed_form():
    w, eq = min_variance_weights(COV), equal_weights(COV)
    assert w @ COV @ w < eq @ COV @ eq
    assert w @ COV @ w <= risk_parity_weights(COV) @ COV @ risk_parity_weights(COV)
    raw = np.linalg.solve(COV, np.ones(5))
    assert (raw < 0).any()  # the unconstrained optimum shorts here: the long-only problem is a real one
    clipped = clipped_min_variance_weights(COV)
    assert w @ COV @ w <= clipped @ COV @ clipped + 1e-12


def test_a_planted_variance_forecast_moves_the_weights_as_the_method_says():
    planted = SIGMA.copy()
    planted[0] *= 2.0  # the risk model says asset 0 will be twice as volatile
    cov = forecast_covariance(planted, CORR)
    for method in ("min_variance", "risk_parity"):
        before, after = WEIGHTS[method](COV), WEIGHTS[method](cov)
        assert after[0] < before[0] - 0.05, method
        assert (after[1:] >= before[1:] - 1e-9).all(), method  # what it sheds goes to the others
    assert np.allclose(equal_weights(cov), 0.2)
    rp = risk_parity_weights(cov)
    assert np.abs(risk_contributions(rp, cov) - 0.2).max() < 1e-6


def test_the_shrunk_correlation_is_a_correlation_pulled_towards_the_identity():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 3)) @ np.array([[1.0, 0.9, 0.9], [0, 0.4, 0.1], [0, 0, 0.4]]) * [1, 50, 0.01]
    r = shrunk_correlation(x)
    sample = np.corrcoef(x, rowvar=False)
    assert np.allclose(np.diag(r), 1.0)
    off = ~np.eye(3, dtype=bool)
    assert (np.abs(r[off]) <= np.abs(sample[off]) + 1e-12).all()


def _market(n=700):
    return {
        f"{b}/USDT": random_walk(f"{b}/USDT", n, seed=i, vol=0.004 * (i + 1))
        for i, b in enumerate(("BTC", "ETH", "SOL"))
    }


def _risk(candles, variance=lambda s, i: 1e-4 * (1 + i % 5)):
    parts = []
    for k, (s, c) in enumerate(candles.items()):
        ts = c["timestamp"].to_numpy("int64")
        parts.append(
            pd.DataFrame(
                {"symbol": s, "cutoff": ts, "horizon": 24, "variance": [variance(k, i) for i in range(len(ts))]}
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_the_covariance_at_a_rebalance_uses_nothing_after_its_cutoff():
    candles, hold = _market(), 24
    base = rebalance_weights(_risk(candles), candles, hold, HOUR, window=200)
    t = int(base.cutoffs[8])
    later = {
        s: c.assign(close=np.where(c["timestamp"] > t, c["close"] * np.exp(np.arange(len(c)) % 7 * 0.01), c["close"]))
        for s, c in candles.items()
    }
    risk = _risk(candles)
    risk.loc[risk["cutoff"] > t, "variance"] = 9e-3
    moved = rebalance_weights(risk, later, hold, HOUR, window=200)
    upto = base.cutoffs <= t
    assert (moved.cutoffs == base.cutoffs).all() and upto.sum() == 9
    assert np.array_equal(moved.cov[upto], base.cov[upto])
    for method in base.weights:
        assert np.array_equal(moved.weights[method][upto], base.weights[method][upto])
        assert not np.allclose(moved.weights[method][~upto], base.weights[method][~upto]) or method == "equal"
    assert ((base.cutoffs - base.cutoffs[0]) % (hold * HOUR) == 0).all()
    assert base.cutoffs[0] >= START + 200 * HOUR  # a full correlation window before the first


def test_a_planted_risk_forecast_reaches_the_rebalance_it_is_live_for():
    candles = _market()
    base = rebalance_weights(_risk(candles), candles, 24, HOUR, window=200)
    t = int(base.cutoffs[5])
    risk = _risk(candles)
    risk.loc[(risk["symbol"] == "SOL/USDT") & (risk["cutoff"] == t), "variance"] *= 16  # 4x the volatility
    planted = rebalance_weights(risk, candles, 24, HOUR, window=200)
    k = base.symbols.index("SOL/USDT")
    assert planted.cov[5, k, k] == pytest.approx(16 * base.cov[5, k, k])
    assert planted.weights["risk_parity"][5, k] < base.weights["risk_parity"][5, k]
    other = np.arange(len(base.cutoffs)) != 5
    assert np.array_equal(planted.weights["risk_parity"][other], base.weights["risk_parity"][other])


@pytest.mark.parametrize("shape", [(200, 3), (40, 100)])  # three pairs; a hundred symbols over fewer candles
def test_the_shrunk_correlation_is_pyportfolioopts_ledoit_wolf_on_standardized_returns(shape):
    """The NumPy estimator is the scikit-learn one PyPortfolioOpt wraps (scikit-learn takes seconds to import)."""
    from pypfopt import risk_models

    rng = np.random.default_rng(4)
    x = rng.normal(size=shape) @ (np.eye(shape[1]) + np.triu(rng.uniform(0, 0.5, (shape[1], shape[1])), 1))
    z = pd.DataFrame((x - x.mean(axis=0)) / x.std(axis=0, ddof=1))
    cov = risk_models.CovarianceShrinkage(z, returns_data=True, frequency=1).ledoit_wolf().to_numpy()
    expected = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    np.testing.assert_allclose(shrunk_correlation(x), expected, rtol=1e-10)
