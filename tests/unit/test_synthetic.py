"""Synthetic candles: deterministic, valid OHLCV, and the statistical texture models will meet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from candlecast.devtools.synthetic import (
    DEFAULT_SIGNAL,
    NO_SIGNAL,
    STRONG_SIGNAL,
    Signal,
    synthetic_candles,
)
from candlecast.schema import CANDLE_COLUMNS, timeframe_ms

START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
HOUR = 3_600_000


@pytest.fixture(scope="module")
def long_frame() -> pd.DataFrame:
    return synthetic_candles("BTC/USDT", START, 20_000, seed=7)


@pytest.fixture(scope="module")
def log_returns(long_frame: pd.DataFrame) -> np.ndarray:
    return np.diff(np.log(long_frame["close"].to_numpy()))


def test_same_seed_same_frame_different_seed_or_symbol_different() -> None:
    a = synthetic_candles("ETH/USDT", START, 500, seed=1)
    pd.testing.assert_frame_equal(a, synthetic_candles("ETH/USDT", START, 500, seed=1))
    assert not np.allclose(a["close"], synthetic_candles("ETH/USDT", START, 500, seed=2)["close"])
    other = synthetic_candles("SOL/USDT", START, 500, seed=1)
    assert not np.allclose(a["close"] / a["close"].iloc[0], other["close"] / other["close"].iloc[0])


def test_a_longer_series_extends_a_shorter_one_exactly() -> None:
    """The emulator is rebuilt with more candles as time passes; the past must not change."""
    short = synthetic_candles("BTC/USDT", START, 300, seed=3)
    long = synthetic_candles("BTC/USDT", START, 1_000, seed=3)
    pd.testing.assert_frame_equal(short, long.iloc[:300])


def test_columns_dtypes_and_aligned_contiguous_timestamps() -> None:
    frame = synthetic_candles("BTC/USDT", START, 300, timeframe="4h")
    assert list(frame.columns) == CANDLE_COLUMNS
    assert frame["timestamp"].dtype == np.int64
    assert all(frame[c].dtype == np.float64 for c in CANDLE_COLUMNS[1:])
    ts = frame["timestamp"].to_numpy()
    tf = timeframe_ms("4h")
    assert ts[0] == START
    assert (ts % tf == 0).all()
    assert (np.diff(ts) == tf).all()


def test_ohlc_is_consistent_and_positive(long_frame: pd.DataFrame) -> None:
    f = long_frame
    assert (f["high"] >= f[["open", "close"]].max(axis=1)).all()
    assert (f["low"] <= f[["open", "close"]].min(axis=1)).all()
    assert (f[["open", "high", "low", "close", "volume"]] > 0).all().all()
    assert f["open"].iloc[0] == 30_000.0
    np.testing.assert_array_equal(f["open"].to_numpy()[1:], f["close"].to_numpy()[:-1])
    assert np.isfinite(f[CANDLE_COLUMNS[1:]].to_numpy()).all()


def test_start_prices_by_base_asset() -> None:
    assert synthetic_candles("ETH/USDT", START, 1)["open"].iloc[0] == 2_000.0
    assert synthetic_candles("XRP/USDT", START, 1)["open"].iloc[0] == 100.0


def test_returns_have_fat_tails(log_returns: np.ndarray) -> None:
    r = log_returns - log_returns.mean()
    excess_kurtosis = (r**4).mean() / (r**2).mean() ** 2 - 3.0
    assert excess_kurtosis > 1.0


def test_volatility_clusters(log_returns: np.ndarray) -> None:
    a = np.abs(log_returns)
    assert np.corrcoef(a[:-1], a[1:])[0, 1] > 0.1


def test_hourly_vol_is_about_point_six_percent(log_returns: np.ndarray) -> None:
    assert 0.004 < log_returns.std() < 0.009


def test_returns_carry_a_weak_learnable_autocorrelation(log_returns: np.ndarray) -> None:
    rho = np.corrcoef(log_returns[:-1], log_returns[1:])[0, 1]
    assert 0.05 < rho < 0.3


def test_volume_rises_with_absolute_return(long_frame: pd.DataFrame, log_returns: np.ndarray) -> None:
    volume = long_frame["volume"].to_numpy()[1:]
    assert np.corrcoef(volume, np.abs(log_returns))[0, 1] > 0.0


def test_unaligned_start_is_rejected_and_empty_frame_keeps_schema() -> None:
    with pytest.raises(ValueError, match="not aligned to 1h"):
        synthetic_candles("BTC/USDT", START + 1, 10)
    empty = synthetic_candles("BTC/USDT", START, 0)
    assert list(empty.columns) == CANDLE_COLUMNS and len(empty) == 0
    assert empty["timestamp"].dtype == np.int64


def _returns_and_hours(signal: Signal, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    frame = synthetic_candles("BTC/USDT", START, n, seed=7, signal=signal)
    returns = np.diff(np.log(frame["close"].to_numpy()))
    hours = ((frame["timestamp"].to_numpy()[1:] % 86_400_000) // HOUR).astype(int)
    return returns, hours


def _hour_of_day_amplitude(returns: np.ndarray, hours: np.ndarray) -> float:
    """Half the spread of the mean return by hour of day, in units of the return std."""
    means = np.array([returns[hours == h].mean() for h in range(24)])
    return float((means.max() - means.min()) / 2 / returns.std())


def test_the_default_signal_is_what_every_caller_got_before() -> None:
    """The keyword is new; a caller that does not pass it gets the realistic market, unchanged."""
    pd.testing.assert_frame_equal(
        synthetic_candles("BTC/USDT", START, 500, seed=2),
        synthetic_candles("BTC/USDT", START, 500, seed=2, signal=DEFAULT_SIGNAL),
    )
    assert (DEFAULT_SIGNAL.ar_phi, DEFAULT_SIGNAL.hour_mean) == (0.15, 0.15)


def test_no_signal_is_noise_and_a_strong_signal_is_plainly_there() -> None:
    noise, hours = _returns_and_hours(NO_SIGNAL)
    strong, _ = _returns_and_hours(STRONG_SIGNAL)

    # pure noise: no autocorrelation, no daily pattern beyond sampling error (24 means of ~830 draws each)
    assert abs(np.corrcoef(noise[:-1], noise[1:])[0, 1]) < 0.03
    assert _hour_of_day_amplitude(noise, hours) < 0.15
    # the strong market: momentum (phi, and the smooth daily mean on top of it) and a daily cycle
    assert np.corrcoef(strong[:-1], strong[1:])[0, 1] > STRONG_SIGNAL.ar_phi
    assert _hour_of_day_amplitude(strong, hours) > 0.5
    # the volatility texture stays: fat tails and clustering do not depend on the signal
    for r in (noise, strong):
        a = np.abs(r - r.mean())
        assert np.corrcoef(a[:-1], a[1:])[0, 1] > 0.1


def test_a_non_stationary_signal_is_refused() -> None:
    with pytest.raises(ValueError, match="stationary"):
        Signal(ar_phi=1.0)


def test_a_volatility_regime_is_shared_across_series_each_at_its_own_level() -> None:
    def weekly_log_rv(symbol: str, signal: Signal) -> np.ndarray:
        r = np.diff(np.log(synthetic_candles(symbol, START, 8000, seed=7, signal=signal)["close"].to_numpy()))
        return np.log(pd.Series(r**2).rolling(168).mean().to_numpy()[168:])

    regime = Signal(vol_regime=0.6)
    shared = np.corrcoef(weekly_log_rv("BTC/USDT", regime), weekly_log_rv("ETH/USDT", regime))[0, 1]
    apart = np.corrcoef(weekly_log_rv("BTC/USDT", DEFAULT_SIGNAL), weekly_log_rv("ETH/USDT", DEFAULT_SIGNAL))[0, 1]
    assert shared > 0.3 and abs(apart) < 0.2  # the regime is what the series' volatilities share
    off = synthetic_candles("BTC/USDT", START, 500, seed=7, signal=Signal(vol_regime=0.0))
    pd.testing.assert_frame_equal(off, synthetic_candles("BTC/USDT", START, 500, seed=7))  # off: every candle as before
    longer = synthetic_candles("BTC/USDT", START, 900, seed=7, signal=regime)
    pd.testing.assert_frame_equal(longer.iloc[:500], synthetic_candles("BTC/USDT", START, 500, seed=7, signal=regime))


def test_a_regime_change_flips_the_learnable_component_from_its_candle_on() -> None:
    flip = START + 10_000 * HOUR
    flipped = Signal(ar_phi=STRONG_SIGNAL.ar_phi, hour_mean=STRONG_SIGNAL.hour_mean, flip_at=flip)
    frame = synthetic_candles("BTC/USDT", START, 20_000, seed=7, signal=flipped)
    pd.testing.assert_frame_equal(  # before the change: the candles of the unchanged signal
        frame.iloc[:10_000], synthetic_candles("BTC/USDT", START, 10_000, seed=7, signal=STRONG_SIGNAL)
    )
    r = np.diff(np.log(frame["close"].to_numpy()))
    before, after = r[:9_999], r[10_001:]
    assert np.corrcoef(before[:-1], before[1:])[0, 1] > 0.4  # momentum ...
    assert np.corrcoef(after[:-1], after[1:])[0, 1] < -0.2  # ... turned into reversal (the daily mean smooths it)
