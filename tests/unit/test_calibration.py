"""Adaptive conformal intervals: they adapt, and they never use an outcome before it has happened."""

import numpy as np

from candlecast.forecasting.calibration import Calibration, adapt

HOUR = 3_600_000
H = 6


def _windows(n: int, seed: int = 0, vol: float = 1.0):
    rng = np.random.default_rng(seed)
    y = rng.normal(0, vol, (n, H)).cumsum(axis=1)
    return y, np.zeros((n, H)), np.arange(n, dtype=np.int64) * HOUR


def test_an_interval_never_uses_an_outcome_that_has_not_closed():
    y, point, origins = _windows(300)
    start = Calibration.fit(*_windows(200, seed=1)[:2], None, 0.8)
    lower, upper, _ = adapt(start, y, point, None, origins, known_after=H * HOUR, rate=0.05)
    for i in (10, 100, 250):
        future = y.copy()
        future[i - H + 1 :] += 50.0  # rewrite every outcome not yet closed at window i (and after)
        lo2, hi2, _ = adapt(start, future, point, None, origins, known_after=H * HOUR, rate=0.05)
        np.testing.assert_array_equal(lo2[: i + 1], lower[: i + 1])
        np.testing.assert_array_equal(hi2[: i + 1], upper[: i + 1])
        assert not np.array_equal(lo2[i + H :], lower[i + H :])  # later windows do see them


def test_rate_zero_is_split_conformal_and_order_of_input_does_not_matter():
    y, point, origins = _windows(400)
    start = Calibration.fit(*_windows(300, seed=1)[:2], None, 0.8)
    lower, upper, end = adapt(start, y, point, None, origins, H * HOUR, rate=0.0)
    np.testing.assert_allclose(lower, point + np.asarray(start.lower))
    assert end == start
    shuffled = np.random.default_rng(3).permutation(len(y))
    _, _, end_a = adapt(start, y, point, None, origins, H * HOUR, rate=0.05)
    lo_b, _, end_b = adapt(start, y[shuffled], point[shuffled], None, origins[shuffled], H * HOUR, rate=0.05)
    lo_a, _, _ = adapt(start, y, point, None, origins, H * HOUR, rate=0.05)
    np.testing.assert_allclose(lo_b, lo_a[shuffled])
    assert end_a == end_b


def test_the_tracked_offsets_follow_a_wider_distribution():
    start = Calibration.fit(*_windows(500, seed=1)[:2], None, 0.8)
    y, point, origins = _windows(3000, seed=2, vol=2.0)
    _, _, end = adapt(start, y, point, None, origins, H * HOUR, rate=0.02)
    assert np.all(np.asarray(end.upper) > 1.6 * np.asarray(start.upper))
    lower, upper, _ = adapt(end, y, point, None, origins, H * HOUR, rate=0.02)
    assert 0.76 <= np.mean((y >= lower) & (y <= upper)) <= 0.84


def test_quantile_models_adapt_their_own_bounds():
    y, point, origins = _windows(2000, seed=4, vol=2.0)
    sd = np.sqrt(np.arange(1, H + 1))
    bounds = np.stack([point - 1.28 * sd, point + 1.28 * sd], axis=-1)  # right for vol 1, too narrow for vol 2
    start = Calibration(0.8, [0.0] * H, [0.0] * H)
    lower, upper, end = adapt(start, y, point, bounds, origins, H * HOUR, rate=0.02)
    assert np.all(np.asarray(end.upper) > 0) and end.lower == [-u for u in end.upper]
    late = slice(-800, None)
    assert 0.75 <= np.mean((y[late] >= lower[late]) & (y[late] <= upper[late])) <= 0.85


def _clustered(n: int, series: int, h: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """h-step sums of fat-tailed shocks under one shared slow volatility regime, ``series`` streams on one clock."""
    rng = np.random.default_rng(seed)
    log_vol = np.zeros(n + h)
    for t in range(1, n + h):
        log_vol[t] = 0.995 * log_vol[t - 1] + 0.1 * rng.normal()
    steps = np.exp(log_vol) * rng.standard_t(4, (series, n + h))
    y = np.stack([np.convolve(s, np.ones(h), "valid")[1 : n + 1] for s in steps]) / np.sqrt(2 * h)
    return y.reshape(-1, 1), np.tile(np.arange(n, dtype=np.int64) * HOUR, series)


def test_late_outcomes_are_judged_against_the_bound_their_window_was_issued_with():
    # Feedback arrives h windows late (h x series on a shared tracker). Judged against the bound current
    # when it closes, a crash's misses barely move it: the 99% lower bound of 5 series at h = 24 missed
    # 3.6% of windows, the 80% interval of one series at h = 24 left 16% below it (both should be 1%, 10%).
    for series, h, interval in ((5, 24, 0.98), (1, 24, 0.8)):
        y_cal, _ = _clustered(2000, series, h, seed=100)
        start = Calibration.fit(y_cal, np.zeros_like(y_cal), None, interval)
        y, origins = _clustered(4000, series, h, seed=0)
        lower, upper, _ = adapt(start, y, np.zeros_like(y), None, origins, h * HOUR, rate=0.02)
        tail = (1 - interval) / 2
        assert abs(np.mean(y < lower) - tail) < 0.3 * tail, (series, h, np.mean(y < lower))
        assert abs(np.mean(y > upper) - tail) < 0.3 * tail, (series, h, np.mean(y > upper))
