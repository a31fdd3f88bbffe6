"""Portfolio weights from forecast risk: a covariance built from the risk model's variances.

The covariance at a rebalance is ``D R D``: ``D`` the diagonal of forecast standard deviations (the
risk model's, for the holding period) and ``R`` the Ledoit-Wolf shrunk correlation of the one-candle
log returns over a trailing window that ends at the rebalance's cutoff candle (so nothing after the
bar). The returns are standardized before shrinking, so the shrinkage pulls the correlation towards
the identity rather than pulling the covariance towards one common variance.

Three long-only, fully invested weightings (weights sum to 1):

* ``equal``: 1/n, the reference.
* ``min_variance``: argmin w'Sw over the simplex, solved exactly by PyPortfolioOpt's
  ``EfficientFrontier.min_volatility`` (cvxpy). The closed form S^-1 1 / 1'S^-1 1 is exact only when it
  is already long-only; crypto pairs are correlated enough that it shorts the most volatile pair
  at most rebalances, and clipping it is not the constrained optimum (bench/portfolio_compare.py
  measures both).
* ``risk_parity``: equal risk contribution, w_i (Sw)_i = w'Sw / n for every i, by Newton's method on
  Spinu's convex form min 0.5 y'Sy - sum(log y_i) / n (y > 0, then w = y / sum y): a dozen 5x5
  solves. PyPortfolioOpt offers only hierarchical risk parity, which allocates by a clustering of
  the correlation and does not equalize risk contributions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METHODS = ("equal", "min_variance", "risk_parity")


def shrunk_correlation(returns: np.ndarray) -> np.ndarray:
    """The Ledoit-Wolf shrunk correlation of the columns of ``returns`` (rows: candles, oldest first).

    scikit-learn's estimator (the one PyPortfolioOpt's ``CovarianceShrinkage.ledoit_wolf()`` wraps) in
    NumPy: importing scikit-learn costs a fresh `candlecast signals` more than the rest of its work
    (tests/trading/test_portfolio_weights.py holds the two equal to 1e-10).
    """
    returns = np.asarray(returns, dtype="float64")
    sd = returns.std(axis=0, ddof=1)
    if len(returns) < 3 or not np.all(np.isfinite(sd) & (sd > 0)):
        raise ValueError(f"the correlation needs at least 3 candles of moving prices per symbol, got {len(returns)}")
    shrunk = _ledoit_wolf((returns - returns.mean(axis=0)) / sd)
    scale = np.sqrt(np.diag(shrunk))
    return shrunk / np.outer(scale, scale)


def _ledoit_wolf(x: np.ndarray) -> np.ndarray:
    """Ledoit and Wolf's (2004) shrinkage of the covariance of centred ``x`` towards mu * I, as scikit-learn has it."""
    n, p = x.shape
    cov = x.T @ x / n
    mu = np.trace(cov) / p
    x2 = x**2
    delta_ = np.sum(cov**2)  # the squared entries of X'X / n
    beta = (np.sum(x2.T @ x2) / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * np.trace(cov) + p * mu**2) / p
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    shrunk = (1.0 - shrinkage) * cov
    shrunk.flat[:: p + 1] += shrinkage * mu
    return shrunk


def forecast_covariance(sigma: np.ndarray, correlation: np.ndarray) -> np.ndarray:
    """``D R D``: the forecast standard deviations on the diagonal's square roots, the correlation between."""
    sigma = np.asarray(sigma, dtype="float64")
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        raise ValueError(f"forecast volatilities must be positive and finite, got {sigma}")
    return correlation * np.outer(sigma, sigma)


def equal_weights(cov: np.ndarray) -> np.ndarray:
    """1/n for each of the n assets."""
    n = len(cov)
    return np.full(n, 1.0 / n)


def min_variance_weights(cov: np.ndarray) -> np.ndarray:
    """The long-only, fully invested minimum-variance weights (PyPortfolioOpt, cvxpy)."""
    from pypfopt import EfficientFrontier

    n = len(cov)
    ef = EfficientFrontier(None, pd.DataFrame(cov), weight_bounds=(0.0, 1.0))
    ef.min_volatility()
    w = np.clip(np.array([ef.weights[i] for i in range(n)], dtype="float64"), 0.0, None)
    return w / w.sum()


def clipped_min_variance_weights(cov: np.ndarray) -> np.ndarray:
    """The closed form S^-1 1 with its shorts clipped to zero and renormalized (the benchmark's comparison)."""
    raw = np.linalg.solve(cov, np.ones(len(cov)))
    w = np.clip(raw / raw.sum(), 0.0, None)
    return w / w.sum()


def risk_parity_weights(cov: np.ndarray, tol: float = 1e-12, max_iter: int = 100) -> np.ndarray:
    """Equal risk contribution weights: Newton on 0.5 y'Sy - b'log y with b = 1/n, then w = y / sum y."""
    cov = np.asarray(cov, dtype="float64")
    n = len(cov)
    b = np.full(n, 1.0 / n)
    y = 1.0 / np.sqrt(np.diag(cov))
    y *= np.sqrt(1.0 / (y @ cov @ y))  # start on the scale where y'Sy = sum(b) = 1, as the optimum has it
    for _ in range(max_iter):
        grad = cov @ y - b / y
        if np.max(np.abs(grad * y)) < tol:
            break
        step = np.linalg.solve(cov + np.diag(b / y**2), grad)
        t = 1.0
        while np.any(y - t * step <= 0):  # stay inside y > 0 (the log barrier's domain)
            t /= 2
        y = y - t * step
    else:
        raise RuntimeError("risk parity did not converge: the covariance is not positive definite")
    return y / y.sum()


def risk_contributions(w: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Each asset's share of the portfolio variance, w_i (Sw)_i / w'Sw (they sum to 1)."""
    return w * (cov @ w) / (w @ cov @ w)


WEIGHTS = {"equal": equal_weights, "min_variance": min_variance_weights, "risk_parity": risk_parity_weights}
