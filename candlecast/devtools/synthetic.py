"""Seeded synthetic candles with the statistical texture of real crypto markets.

Tests, the offline demo and the exchange emulator need candles that behave like the real thing
(fat tails, volatility clustering, volume that follows volatility) and carry a weak but genuine
signal (AR(1) returns, an hour-of-day mean), so that a model can beat the naive baseline by a
little and a broken pipeline shows up as a broken number rather than as noise.

The signal's strength is a parameter (``Signal``): tests that must pin an outcome of the promotion
gate use ``STRONG_SIGNAL`` (a working pipeline clearly beats naive) or ``NO_SIGNAL`` (pure noise,
which nothing can beat), instead of the realistic default whose outcome is a coin flip on tiny data.

``Signal.vol_regime`` adds a volatility regime every series shares: a slow log-volatility factor
(AR(1), half-life about six days, drawn from a stream keyed by the seed and the start, not the
symbol) multiplies each series' GARCH volatility, times a level of the series' own (a fixed factor
between 0.67 and 1.5 from its symbol). A model pooled across series sees the same regime in every
series' history; 0 (the default) leaves every candle as it was.

``Signal.flip_at`` is a regime change (the live rehearsal's): from the candle opened at that time the
learnable component switches sign (the hour-of-day mean and the AR coefficient), so a model trained
before it forecasts the wrong way after it. The shocks are the same either way: the candles before
the change are those of the unchanged signal.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from candlecast.schema import CANDLE_COLUMNS, timeframe_ms

_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000

#: Start prices by base asset; anything else starts at DEFAULT_START_PRICE.
START_PRICES: dict[str, float] = {"BTC": 30_000.0, "ETH": 2_000.0}
DEFAULT_START_PRICE = 100.0

HOURLY_VOL = 0.006  # unconditional std of hourly log returns (~0.6 %)
GARCH_ALPHA = 0.08
GARCH_BETA = 0.90
AR_PHI = 0.15
HOUR_MEAN_AMPLITUDE = 0.15  # in units of the unconditional return std: the demo's learnable signal
T_DF = 4.0
BASE_NOTIONAL_PER_HOUR = 5_000_000.0  # quote volume per hour at average volatility
VOLUME_LOG_SD = 0.35
WICK_SCALE = 0.5  # wick length in units of sigma_t (half-normal)
EPS_CLIP = 8.0  # shocks beyond 8 sd are clipped: t(4) otherwise yields rare 5x one-candle moves
MAX_VOL_RATIO = 6.0  # sigma_t never exceeds 6x the unconditional vol, for the same reason
REGIME_RHO = 0.995  # hourly persistence of the shared log-vol factor: a half-life of ~138 hours
REGIME_LEVEL = 0.4  # each series' own volatility level: exp(+-0.4), from its symbol


@dataclass(frozen=True)
class Signal:
    """The learnable part of the synthetic returns: ``mu(hour) + ar_phi * r_{t-1}``.

    Attributes:
        ar_phi: AR(1) coefficient of the log returns; 0 makes past returns useless.
        hour_mean: Amplitude of the hour-of-day mean return, in units of the unconditional return
            std; 0 removes the daily pattern.
        vol_regime: Standard deviation of the shared log-volatility factor; 0 means none.
        flip_at: Open time (ms) of the first candle whose learnable component has the opposite sign;
            None means no change.
    """

    ar_phi: float = AR_PHI
    hour_mean: float = HOUR_MEAN_AMPLITUDE
    vol_regime: float = 0.0
    flip_at: int | None = None

    def __post_init__(self) -> None:
        if not -1.0 < self.ar_phi < 1.0:
            raise ValueError(f"ar_phi must be inside (-1, 1) for stationary returns, got {self.ar_phi}")


#: The realistic default: a weak but genuine edge over the random walk.
DEFAULT_SIGNAL = Signal()
#: Pure noise (GARCH volatility, no predictable mean): no model can beat naive on it.
NO_SIGNAL = Signal(ar_phi=0.0, hour_mean=0.0)
#: A pattern a tiny model learns in a few epochs: strong momentum plus a clear daily cycle.
STRONG_SIGNAL = Signal(ar_phi=0.5, hour_mean=1.0)


def _rngs(seed: int, symbol: str, k: int) -> list[np.random.Generator]:
    """``k`` independent streams keyed by (seed, symbol); crc32 because Python's hash() is salted.

    One stream per quantity keeps a longer series an exact extension of a shorter one, so an
    emulator rebuilt later with more candles serves the same past.
    """
    root = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(symbol.encode("utf-8"))])
    return [np.random.default_rng(child) for child in root.spawn(k)]


def start_price(symbol: str) -> float:
    """Where a synthetic series starts, so BTC looks like BTC in plots and logs."""
    return START_PRICES.get(symbol.split("/")[0].upper(), DEFAULT_START_PRICE)


def regime(seed: int, start_ms: int, symbol: str, n: int, strength: float) -> np.ndarray:
    """The volatility multiplier (n,) of the shared regime: the series' level times exp(s f_t - s^2).

    f is a unit-variance AR(1) drawn from a stream of (seed, start) alone, so every series starting
    together shares it; exp(s f - s^2) has a mean square of 1, so the market's overall variance stays.
    """
    if strength == 0 or n == 0:
        return np.ones(n)
    root = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(start_ms) & 0xFFFFFFFF, 0x5EED])
    eta = np.random.default_rng(root).standard_normal(n)
    f = np.empty(n)
    f[0] = eta[0]
    scale = np.sqrt(1 - REGIME_RHO**2)
    for t in range(1, n):  # a plain recursion; ~20 ms for 20k steps
        f[t] = REGIME_RHO * f[t - 1] + scale * eta[t]
    level = np.exp(REGIME_LEVEL * (2 * zlib.crc32(symbol.encode("utf-8")) / 0xFFFFFFFF - 1))
    return level * np.exp(strength * f - strength**2)


def _returns(
    eps: np.ndarray, mu: np.ndarray, omega: float, var0: float, phi: np.ndarray, m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Run the AR(1)-GARCH(1,1) recursion, each shock times the regime ``m``; a plain loop (~10 ms for 20k steps).

    The GARCH recursion runs on its own shocks, so the regime adds to its clustering instead of feeding it.
    """
    n = len(eps)
    r = [0.0] * n
    sig = [0.0] * n
    var, shock, prev = var0, 0.0, 0.0
    var_max = var0 * MAX_VOL_RATIO**2
    a, b = GARCH_ALPHA, GARCH_BETA
    eps_l, mu_l, m_l, phi_l = eps.tolist(), mu.tolist(), m.tolist(), phi.tolist()
    for t in range(n):
        var = min(omega + a * shock * shock + b * var, var_max)
        s = var**0.5
        shock = s * eps_l[t]
        prev = mu_l[t] + phi_l[t] * prev + shock * m_l[t]
        r[t] = prev
        sig[t] = s * m_l[t]
    return np.asarray(r), np.asarray(sig)


def synthetic_candles(
    symbol: str, start_ms: int, n: int, timeframe: str = "1h", seed: int = 0, *, signal: Signal = DEFAULT_SIGNAL
) -> pd.DataFrame:
    """Generate ``n`` contiguous candles starting at ``start_ms`` (a candle open time, UTC ms).

    Log returns follow ``r_t = mu(hour) + phi * r_{t-1} + sigma_t * eps_t`` with Student-t(4)
    shocks scaled to unit variance and GARCH(1,1) ``sigma_t``. The same (seed, symbol) always
    gives the same frame, in any process.

    Args:
        symbol: Unified symbol such as 'BTC/USDT'; picks the start price and keys the RNG.
        start_ms: Open time of the first candle; must be aligned to the timeframe.
        n: Number of candles (0 gives an empty frame with the right columns).
        timeframe: ccxt timeframe string; volatility scales with sqrt(duration).
        seed: Seed shared by all symbols of one run.
        signal: How strong the predictable part is; the same seed gives the same shocks whatever
            the signal, so two strengths differ only in what a model can learn.

    A longer series is an exact extension of a shorter one with the same start.

    Returns:
        A frame with CANDLE_COLUMNS: int64 timestamp, float64 OHLCV.
    """
    tf = timeframe_ms(timeframe)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if start_ms % tf:
        lo = start_ms - start_ms % tf
        raise ValueError(
            f"start_ms={start_ms} is not aligned to {timeframe}: use {lo} or {lo + tf} (a candle open time)"
        )
    rng_eps, rng_up, rng_down, rng_volume = _rngs(seed, symbol, 4)
    ts = start_ms + tf * np.arange(n, dtype=np.int64)

    vol = HOURLY_VOL * np.sqrt(tf / _HOUR_MS)
    var0 = vol * vol
    omega = var0 * (1.0 - GARCH_ALPHA - GARCH_BETA)
    eps = np.clip(rng_eps.standard_t(T_DF, size=n) / np.sqrt(T_DF / (T_DF - 2.0)), -EPS_CLIP, EPS_CLIP)
    hour = (ts % _DAY_MS) // _HOUR_MS
    sign = np.where(ts >= signal.flip_at, -1.0, 1.0) if signal.flip_at is not None else np.ones(n)
    mu = sign * signal.hour_mean * vol * np.sin(2.0 * np.pi * hour / 24.0)
    m = regime(seed, start_ms, symbol, n, signal.vol_regime)
    r, sigma = _returns(eps, mu, omega, var0, sign * signal.ar_phi, m)

    p0 = start_price(symbol)
    close = p0 * np.exp(np.cumsum(r))
    open_ = np.empty(n)
    if n:
        open_[0] = p0
        open_[1:] = close[:-1]
    wick_up = np.abs(rng_up.standard_normal(n)) * WICK_SCALE * sigma
    wick_dn = np.abs(rng_down.standard_normal(n)) * WICK_SCALE * sigma
    high = np.maximum(open_, close) * np.exp(wick_up)
    low = np.minimum(open_, close) * np.exp(-wick_dn)

    # Scaled by the unconditional vol, not the sample mean, so past volumes do not depend on n.
    base_volume = BASE_NOTIONAL_PER_HOUR * (tf / _HOUR_MS) / p0
    volume = base_volume * (sigma / vol) * rng_volume.lognormal(-0.5 * VOLUME_LOG_SD**2, VOLUME_LOG_SD, n)

    frame = pd.DataFrame({"timestamp": ts, "open": open_, "high": high, "low": low, "close": close, "volume": volume})
    return frame[CANDLE_COLUMNS].astype({c: "float64" for c in CANDLE_COLUMNS[1:]})
