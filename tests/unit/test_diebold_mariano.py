"""The Diebold-Mariano test keeps its size: equal-skill forecasts are not called better more than 7% of the time.

Random-walk returns, h=24 cumulative targets from overlapping windows (one every candle), and two
forecasts of equal skill; once for one series and once for two series whose returns and forecasts
correlate 0.8 (like BTC and ETH) pooled as the backtest pools them. Counting each hour of two
correlated series as independent evidence rejected in about 12% of seeds; grouping by time does not.
"""

import numpy as np
import pytest

from candlecast.forecasting.metrics import diebold_mariano

H = 24
WINDOWS = 1000
SEEDS = 1000


def _equal_skill(seed: int, n_series: int, rho: float = 0.8, edge: float = 0.0):
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, rho], [rho, 1.0]])[:n_series, :n_series]
    returns = rng.multivariate_normal(np.zeros(n_series), cov, size=WINDOWS + H + 1)
    noise_a = rng.multivariate_normal(np.zeros(n_series), cov, size=WINDOWS) * 0.3
    noise_b = rng.multivariate_normal(np.zeros(n_series), cov, size=WINDOWS) * 0.3
    spread = np.sqrt(np.arange(1, H + 1))
    err_a, err_b, stamps = [], [], []
    for s in range(n_series):
        path = np.concatenate([[0.0], np.cumsum(returns[:, s])])
        y = np.stack([path[1 + k : 1 + k + WINDOWS] - path[1 : 1 + WINDOWS] for k in range(1, H + 1)], axis=1)
        err_a.append(y - noise_a[:, s : s + 1] * spread * (1 - edge))
        err_b.append(y - noise_b[:, s : s + 1] * spread)
        stamps.append(np.arange(WINDOWS) * 3_600_000)
    return np.concatenate(err_a), np.concatenate(err_b), np.concatenate(stamps)


@pytest.mark.slow  # 1000 simulated seeds
@pytest.mark.parametrize("n_series", [1, 2])
def test_equal_skill_forecasts_are_rejected_at_most_7_percent_of_the_time(n_series):
    rejected = 0
    for seed in range(SEEDS):
        err_a, err_b, stamps = _equal_skill(seed, n_series)
        rejected += diebold_mariano(err_a, err_b, H - 1, stamps)[1] < 0.05
    assert rejected / SEEDS <= 0.07


@pytest.mark.slow
def test_counting_correlated_series_as_independent_over_rejects():
    """The failure the grouping fixes, reproduced: the same data stacked without timestamps."""
    stacked = grouped = 0
    for seed in range(300):
        err_a, err_b, stamps = _equal_skill(seed, 2)
        stacked += diebold_mariano(err_a, err_b, H - 1)[1] < 0.05
        grouped += diebold_mariano(err_a, err_b, H - 1, stamps)[1] < 0.05
    assert stacked > grouped


def test_a_better_forecast_is_found():
    found = 0
    for seed in range(50):
        err_a, err_b, stamps = _equal_skill(seed, 1, edge=0.3)
        found += diebold_mariano(err_a, err_b, H - 1, stamps)[1] < 0.05
    assert found >= 20  # the power here is about 60%; the size is 5%


def test_identical_forecasts_give_no_evidence():
    err = np.random.default_rng(0).normal(size=(500, H))
    assert diebold_mariano(err, err, H - 1) == (0.0, 0.5)
