"""Realized measures from OHLC candles: range-based variances, semivariances, jumps and quarticity.

Per candle (ln is the natural log; O, H, L, C the candle's prices):
  * Parkinson (1980): ln(H/L)^2 / (4 ln 2);
  * Garman & Klass (1980): 0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2;
  * Rogers & Satchell (1991): ln(H/C) ln(H/O) + ln(L/C) ln(L/O) (unbiased under drift);
  * the close-to-close return r_t = ln(C_t / C_{t-1}), whose square is the realized variance's term.
Over a window of n candles: Yang & Zhang (2000), V_O + k V_C + (1 - k) V_RS with V_O, V_C the sample
variances of the opening jumps ln(O_t / C_{t-1}) and of ln(C/O), V_RS the mean Rogers-Satchell and
k = 0.34 / (1.34 + (n + 1) / (n - 1)); the up and down semivariances (Barndorff-Nielsen, Kinnebrock &
Shephard 2010), the sums of r^2 over r > 0 and r < 0; bipower variation (Barndorff-Nielsen & Shephard
2004), (pi / 2) sum |r_t| |r_{t-1}|, and the jump proxy max(RV - BV, 0); realized quarticity, (n / 3)
sum r^4.

Windows are HAR's (Corsi 2009): the last day, week (7 days) and month (30 days) of candles of the
series' timeframe, each aggregate scaled to one day (a window's mean per candle times the candles in
a day), so the daily, weekly and monthly values are on one scale. Windows are counted in time, not in
rows, and a return or a bipower product needs both of its candles: a missing candle never makes two
candles look adjacent. An aggregate needs half of its window present and, like every rolling feature
here, a full window since the frame began (so a frame cut at t gives the same rows before t).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

import numpy as np
import pandas as pd

from candlecast.config import RealizedName

_DAY_MS = 86_400_000
_LN2 = float(np.log(2.0))
#: The HAR windows in days: the last day, week and month, as Corsi's daily, weekly and monthly terms.
HAR_DAYS = {"d": 1, "w": 7, "m": 30}
MEASURES: tuple[str, ...] = get_args(RealizedName)


def candles_per_day(step_ms: int) -> int:
    """Candles of this timeframe in a day (at least one: a daily or weekly candle is its own day)."""
    return max(1, _DAY_MS // step_ms)


def grid_positions(ts: np.ndarray, step_ms: int) -> np.ndarray:
    """Each row's slot on the regular time grid from the first candle; an off-grid timestamp is an error."""
    offset = np.asarray(ts, dtype="int64") - int(ts[0]) if len(ts) else np.zeros(0, dtype="int64")
    if np.any(offset % step_ms) or np.any(np.diff(offset) <= 0):
        raise ValueError(f"candle timestamps must rise on the {step_ms} ms grid: resample or deduplicate the candles")
    return offset // step_ms


def log_returns(ts: np.ndarray, close: np.ndarray, step_ms: int) -> np.ndarray:
    """Close-to-close log returns; NaN where the previous candle is missing (never bridged)."""
    return _adjacent_diff(ts, np.log(close), np.log(close), step_ms)


def opening_jumps(ts: np.ndarray, open_: np.ndarray, close: np.ndarray, step_ms: int) -> np.ndarray:
    """ln(O_t / C_{t-1}), Yang-Zhang's "overnight" return; NaN where the previous candle is missing."""
    return _adjacent_diff(ts, np.log(open_), np.log(close), step_ms)


def _adjacent_diff(ts: np.ndarray, now: np.ndarray, before: np.ndarray, step_ms: int) -> np.ndarray:
    out = np.full(len(now), np.nan)
    if len(now) > 1:
        out[1:] = np.where(np.diff(ts) == step_ms, now[1:] - before[:-1], np.nan)
    return out


def parkinson(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Parkinson's variance per candle: ln(H/L)^2 / (4 ln 2)."""
    return np.log(high / low) ** 2 / (4 * _LN2)


def garman_klass(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Garman-Klass variance per candle: 0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2."""
    return garman_klass_logs(np.log(high / low), np.log(close / open_))


def garman_klass_logs(log_range: np.ndarray, log_body: np.ndarray) -> np.ndarray:
    """Garman-Klass from ln(H/L) and ln(C/O), the ``range`` and ``body`` features."""
    return 0.5 * log_range**2 - (2 * _LN2 - 1) * log_body**2


def rogers_satchell(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Rogers-Satchell variance per candle: ln(H/C) ln(H/O) + ln(L/C) ln(L/O)."""
    return np.log(high / close) * np.log(high / open_) + np.log(low / close) * np.log(low / open_)


def window_mean(x: np.ndarray, pos: np.ndarray, window: int) -> np.ndarray:
    """Per row, the mean of the finite ``x`` in the last ``window`` grid slots.

    NaN until half the window is present and a full window has passed since the first slot.
    """
    mean, _ = _window_stats(x, pos, window, "mean")
    return mean


def _window_stats(x: np.ndarray, pos: np.ndarray, window: int, stat: str) -> tuple[np.ndarray, np.ndarray]:
    size = int(pos[-1]) + 1 if len(pos) else 0
    grid = np.full(size, np.nan)
    grid[pos] = x
    rolling = pd.Series(grid).rolling(window, min_periods=max(1, window // 2))
    value = (rolling.mean() if stat == "mean" else rolling.var(ddof=1)).to_numpy()[pos]
    count = rolling.count().to_numpy()[pos]
    return np.where(pos >= window - 1, value, np.nan), count


def yang_zhang(
    ts: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, step_ms: int, window: int
) -> np.ndarray:
    """Yang-Zhang variance per candle over the last ``window`` candles (n of them present); NaN while n < 2."""
    pos = grid_positions(ts, step_ms)
    v_open, _ = _window_stats(opening_jumps(ts, open_, close, step_ms), pos, window, "var")
    v_close, n = _window_stats(np.log(close / open_), pos, window, "var")
    v_rs = window_mean(rogers_satchell(open_, high, low, close), pos, window)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = 0.34 / (1.34 + (n + 1) / (n - 1))
    return np.where(n >= 2, v_open + k * v_close + (1 - k) * v_rs, np.nan)


class Realized:
    """One series' realized measures over the HAR windows, each scaled to one day.

    ``open_``, ``high`` and ``low`` may be None where only returns are at hand (the HAR baselines'
    return-based measures need the closes only); the range-based ones then raise.
    """

    def __init__(
        self,
        ts: np.ndarray,
        close: np.ndarray,
        step_ms: int,
        open_: np.ndarray | None = None,
        high: np.ndarray | None = None,
        low: np.ndarray | None = None,
    ):
        self.ts, self.close, self.step_ms = np.asarray(ts, dtype="int64"), np.asarray(close, dtype="float64"), step_ms
        self.open, self.high, self.low = open_, high, low
        self.pos = grid_positions(self.ts, step_ms)
        self.day = candles_per_day(step_ms)
        self.r = log_returns(self.ts, self.close, step_ms)

    def over(self, per_candle: np.ndarray, days: int) -> np.ndarray:
        """The mean of a per-candle variance over the last ``days`` days, times the candles in a day."""
        return window_mean(per_candle, self.pos, self.day * days) * self.day

    def rv(self, days: int) -> np.ndarray:
        """Realized variance: the sum of squared returns, per day."""
        return self.over(self.r**2, days)

    def up(self, days: int) -> np.ndarray:
        """The up semivariance: squared positive returns, per day."""
        return self.over(np.where(np.isnan(self.r), np.nan, np.where(self.r > 0, self.r**2, 0.0)), days)

    def down(self, days: int) -> np.ndarray:
        """The down semivariance: squared negative returns, per day."""
        return self.over(np.where(np.isnan(self.r), np.nan, np.where(self.r < 0, self.r**2, 0.0)), days)

    def bipower(self, days: int) -> np.ndarray:
        """Bipower variation: (pi / 2) |r_t| |r_{t-1}| per adjacent pair, per day (NaN products skipped)."""
        product = np.full(self.r.shape, np.nan)  # (rows,) or (rows, series)
        # a finite r_t means row t-1 is the candle just before, so r_{t-1} is the adjacent return
        product[1:] = np.abs(self.r[1:]) * np.abs(self.r[:-1])
        return self.over(np.pi / 2 * product, days)

    def jump(self, days: int) -> np.ndarray:
        """The jump proxy: max(RV - BV, 0), per day."""
        return np.maximum(self.rv(days) - self.bipower(days), 0.0)

    def quarticity(self, days: int) -> np.ndarray:
        """Realized quarticity of one day, (n / 3) sum r^4 with n candles a day; averaged over longer windows."""
        return window_mean(self.r**4, self.pos, self.day * days) * self.day**2 / 3

    def range_based(self, name: str, days: int) -> np.ndarray:
        """Parkinson, Garman-Klass, Rogers-Satchell or Yang-Zhang variance, per day."""
        if self.open is None or self.high is None or self.low is None:
            raise ValueError(f"the {name} estimator needs open, high and low prices, not only closes")
        o, h, lo, c = self.open, self.high, self.low, self.close
        if name == "yang_zhang":
            return yang_zhang(self.ts, o, h, lo, c, self.step_ms, self.day * days) * self.day
        if name == "parkinson":
            return self.over(parkinson(h, lo), days)
        if name == "garman_klass":
            return self.over(garman_klass(o, h, lo, c), days)
        return self.over(rogers_satchell(o, h, lo, c), days)


def realized_features(candles: pd.DataFrame, measures: Sequence[str], step_ms: int) -> pd.DataFrame:
    """Columns ``rm_<measure>_<d|w|m>`` for each configured measure, as daily volatilities.

    Each is the square root of the day-scaled variance (quarticity's fourth root), so they read like
    ``rvol`` and stay finite where a window never moved; semivariance gives ``rm_up_*`` and ``rm_down_*``.
    """
    prices = [candles[k].to_numpy("float64") for k in ("open", "high", "low", "close")]
    rm = Realized(candles["timestamp"].to_numpy("int64"), prices[3], step_ms, *prices[:3])
    return pd.DataFrame(realized_columns(rm, measures), index=candles.index)


def realized_columns(rm: Realized, measures: Sequence[str]) -> dict[str, np.ndarray]:
    """``realized_features``' columns from a ``Realized`` (one series, or many side by side in serving)."""
    unknown = sorted(set(measures) - set(MEASURES))
    if unknown:
        raise ValueError(f"unknown realized measures {unknown}: choose from {list(MEASURES)}")
    compute = {
        "rv": [("rv", rm.rv)],
        "semivariance": [("up", rm.up), ("down", rm.down)],
        "jump": [("jump", rm.jump)],
        "quarticity": [("quarticity", lambda d: np.sqrt(rm.quarticity(d)))],
    }
    out: dict[str, np.ndarray] = {}
    for measure in measures:
        parts = compute.get(measure, [(measure, lambda d, m=measure: rm.range_based(m, d))])
        for name, fn in parts:
            for suffix, days in HAR_DAYS.items():
                out[f"rm_{name}_{suffix}"] = np.sqrt(np.maximum(fn(days), 0.0))
    return out


def realized_warmup(step_ms: int) -> int:
    """Candles before the monthly window is full: a month of candles plus the one a return needs."""
    return HAR_DAYS["m"] * candles_per_day(step_ms) + 1
