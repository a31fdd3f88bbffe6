"""The last window's features for many series at once: one NumPy pass over a (rows, series) array.

Prediction needs each series' newest ``lookback`` rows of features, computed on the window and its
warm-up (``BundleSpec.min_candles + 1`` candles). Per series, ``compute_features`` assembles a pandas
frame of ~100 rows, milliseconds a series; here the tails of every series stand side by side as
columns of (rows, series) arrays, and each feature is one array expression for all of them. A
rolling statistic is one call of pandas' own kernel over the series laid end to end (windows that
stop at each series' first row), a recursive average one loop over the rows for every series, with
pandas' arithmetic; the rest is elementwise. So every value equals ``compute_features`` on each
tail bit for bit (tests/unit/test_last_window.py checks to 1e-10).

A series goes through ``compute_features`` on its own instead (same result, its own cost) when its
tail is not the simple case this pass assumes: unsorted or repeated timestamps, a missing candle, a
non-finite price or volume. So does every series of a config this pass does not compute (``batchable``
names the setting: ``cross_assets``, or ``denoise: hampel``). Realized measures are computed here, by
``Realized``'s own per-candle formulas with each window's mean over every series in one rolling call.
Tails of different lengths are stacked by length.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer

from candlecast.config import FeatureConfig
from candlecast.features.compute import _hour_and_weekday, _zscore, compute_features, feature_columns
from candlecast.features.exogenous import exogenous_lookup
from candlecast.features.realized import Realized, candles_per_day, realized_columns, rogers_satchell
from candlecast.schema import CANDLE_COLUMNS, timeframe_ms

#: Candles of one series: a frame, or a mapping of each candle column to its array (no frame built).
Candles: TypeAlias = pd.DataFrame | Mapping[str, Any]


@dataclass
class Windows:
    """The newest ``rows`` feature rows of every series, in the order given."""

    columns: list[str]  # the F feature names, in compute_features' order
    features: np.ndarray  # float64 (S, rows, F), unscaled
    timestamps: np.ndarray  # int64 (S, rows)
    closes: np.ndarray  # float64 (S,): each series' last close
    fallback: list[int]  # the series computed one by one (compute_features): not the simple case


def batchable(cfg: FeatureConfig) -> bool:
    """Whether the one-pass computation covers this config (else every series goes through compute_features).

    Not for ``cross_assets`` (each series joins other markets' candles by time) nor ``denoise: hampel``
    (a rolling median of every feature column): both stay per series.
    """
    return not (cfg.cross_assets or cfg.denoise == "hampel")


def last_windows(
    tails: Sequence[Candles],
    cfg: FeatureConfig,
    timeframe: str,
    rows: int,
    exogenous: list[pd.DataFrame] | None = None,
    cross: dict[str, pd.DataFrame] | None = None,
) -> Windows:
    """Features of the newest ``rows`` candles of each tail; each tail is the candles its features may use.

    Every column equals ``compute_features(tail)``'s last ``rows`` rows; a tail shorter than ``rows``
    is an error naming its position (the caller checks lengths first with a better message).
    """
    step = timeframe_ms(timeframe)
    if cfg.exogenous and (exogenous is None or len(exogenous) != len(cfg.exogenous)):
        raise ValueError("exogenous series are configured but were not given: read them with read_exogenous")
    for i, tail in enumerate(tails):
        if len(tail["timestamp"]) < rows:
            raise ValueError(f"series {i} has {len(tail['timestamp'])} candles, fewer than the {rows} of one window")
    out: list[tuple[list[str], np.ndarray, np.ndarray, float] | None] = [None] * len(tails)
    by_length: dict[int, list[tuple[int, list[np.ndarray]]]] = {}
    for i, tail in enumerate(tails):
        arrays = _arrays(tail) if batchable(cfg) else None
        if arrays is not None and len(arrays[0]) >= 2:
            by_length.setdefault(len(arrays[0]), []).append((i, arrays))
    for members in by_length.values():
        stacked = [np.stack([a[k] for _, a in members], axis=1) for k in range(len(CANDLE_COLUMNS))]
        # the simple case, checked for all at once: one candle after another, every value finite
        simple = (np.diff(stacked[0], axis=0) == step).all(axis=0)
        for values in stacked[1:]:
            simple &= np.isfinite(values).all(axis=0)
        keep = np.flatnonzero(simple)
        if not len(keep):
            continue
        c = {name: values[:, keep] for name, values in zip(CANDLE_COLUMNS, stacked, strict=True)}
        columns, feats = _features(c, cfg, step, rows, exogenous)
        for j, k in enumerate(keep):
            out[members[k][0]] = (columns, feats[j], c["timestamp"][-rows:, j], float(c["close"][-1, j]))
    fallback = [i for i, o in enumerate(out) if o is None]
    for i in fallback:
        out[i] = _one_series(tails[i], cfg, timeframe, rows, exogenous, cross)
    done = [o for o in out if o is not None]
    columns = done[0][0]
    for cols, *_ in done:
        if cols != columns:  # only if a fallback's frame came out with other columns: a bug, not bad input
            raise ValueError(f"features {cols} differ from {columns} between series of one call")
    return Windows(
        columns,
        np.stack([f for _, f, _, _ in done]),
        np.stack([t for _, _, t, _ in done]),
        np.array([c for _, _, _, c in done], dtype="float64"),
        fallback,
    )


def _arrays(candles: Candles) -> list[np.ndarray] | None:
    """The candle columns as arrays (timestamp int64, the rest float64); None if one is missing or not numeric."""
    try:
        ts = np.asarray(candles["timestamp"]).astype("int64", copy=False)
        return [ts, *(np.asarray(candles[c], dtype="float64") for c in CANDLE_COLUMNS[1:])]
    except (KeyError, TypeError, ValueError):
        return None  # compute_features names what is wrong


def _one_series(
    candles: Candles,
    cfg: FeatureConfig,
    timeframe: str,
    rows: int,
    exogenous: list[pd.DataFrame] | None,
    cross: dict[str, pd.DataFrame] | None,
) -> tuple[list[str], np.ndarray, np.ndarray, float]:
    """The fallback: ``compute_features`` on this tail alone."""
    frame = candles if isinstance(candles, pd.DataFrame) else pd.DataFrame(dict(candles))
    feats = compute_features(frame, cfg, timeframe, cross=cross, exogenous=exogenous)
    columns = feature_columns(feats)
    tail = feats.iloc[-rows:]
    return (
        columns,
        tail[columns].to_numpy("float64"),
        tail["timestamp"].to_numpy("int64"),
        float(tail["close"].iloc[-1]),
    )


class _EachSeries(BaseIndexer):
    """Trailing windows of ``window_size`` rows that never reach into the series before: rows of ``rows`` each."""

    rows: int

    def get_window_bounds(
        self,
        num_values: int = 0,
        min_periods: int | None = None,
        center: bool | None = None,
        closed: str | None = None,
        step: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return _bounds(num_values, self.rows, self.window_size)


@functools.lru_cache(maxsize=8)
def _bounds(values: int, rows: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """``_EachSeries``' bounds, kept: the realized measures ask for the same windows a dozen times a call."""
    i = np.arange(values, dtype=np.int64)
    return i - np.minimum(i % rows, window - 1), i + 1


def _rolling(x: np.ndarray, window: int, min_periods: int | None = None, std: bool = True):
    """Rolling mean (and std, ddof 1) down the rows of (rows, series), as pandas computes it, in one call.

    The series lie end to end in one flat Series whose windows stop at each series' first row, so
    pandas' own running sums give each series what its own ``rolling`` gives, bit for bit.
    """
    rolling, shape = _each_rolling(x, window, min_periods or window)
    mean = rolling.mean().to_numpy().reshape(shape).T
    return mean, (rolling.std().to_numpy().reshape(shape).T if std else None)


def _each_rolling(x: np.ndarray, window: int, min_periods: int) -> tuple[Any, tuple[int, int]]:
    """Pandas' rolling over the columns of (rows, series) laid end to end, and the (series, rows) shape."""
    n, series = x.shape
    # one series needs no indexer (pandas inspects a custom one's signature on every call: 0.3 ms)
    windows = window if series == 1 else _EachSeries(window_size=window, rows=n)
    return pd.Series(x.T.ravel()).rolling(windows, min_periods=min_periods), (series, n)


class _RealizedRows(Realized):
    """``Realized`` on gapless (rows, series) arrays: its formulas, each window's statistics in one rolling call.

    A gapless tail's grid slot is its row, so ``window_mean``'s grid is the values themselves.
    """

    def __init__(self, c: dict[str, np.ndarray], step_ms: int):  # no super(): its grid check is for one series
        self.ts, self.close, self.step_ms, self.candles = c["timestamp"], c["close"], step_ms, c
        self.open, self.high, self.low = c["open"], c["high"], c["low"]
        self.day = candles_per_day(step_ms)
        self.rows = np.arange(len(self.ts))[:, None]
        self.r = _lagged_diff(np.log(self.close), 1)

    def _stats(self, x: np.ndarray, window: int, stat: str) -> tuple[np.ndarray, np.ndarray | None]:
        """``realized._window_stats``: the mean or variance, NaN before a full window, and (variance) the count."""
        rolling, shape = _each_rolling(x, window, max(1, window // 2))
        value = (rolling.mean() if stat == "mean" else rolling.var(ddof=1)).to_numpy().reshape(shape).T
        count = rolling.count().to_numpy().reshape(shape).T if stat == "var" else None
        return np.where(self.rows >= window - 1, value, np.nan), count

    def over(self, per_candle: np.ndarray, days: int) -> np.ndarray:
        return self._stats(per_candle, self.day * days, "mean")[0] * self.day

    def quarticity(self, days: int) -> np.ndarray:
        return self._stats(self.r**4, self.day * days, "mean")[0] * self.day**2 / 3

    def range_based(self, name: str, days: int) -> np.ndarray:
        if name != "yang_zhang":
            return super().range_based(name, days)
        window = self.day * days  # realized.yang_zhang, row for row
        o, h, lo, c = (self.candles[k] for k in ("open", "high", "low", "close"))
        jumps = np.full(o.shape, np.nan)  # the opening jumps ln(O_t / C_{t-1})
        jumps[1:] = np.log(o)[1:] - np.log(c)[:-1]
        v_open = self._stats(jumps, window, "var")[0]
        v_close, n = self._stats(np.log(c / o), window, "var")
        assert n is not None  # a variance's count
        v_rs = self._stats(rogers_satchell(o, h, lo, c), window, "mean")[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            k = 0.34 / (1.34 + (n + 1) / (n - 1))
        return np.where(n >= 2, v_open + k * v_close + (1 - k) * v_rs, np.nan) * self.day


def _realized(c: dict[str, np.ndarray], measures: Sequence[str], step: int) -> dict[str, np.ndarray]:
    """``realized.realized_features`` on gapless (rows, series) arrays."""
    return realized_columns(_RealizedRows(c, step), measures)


def _rolling_std(x: np.ndarray, window: int) -> np.ndarray:
    """``compute._rolling_std`` on every column: half the window filled suffices, NaN before a full window."""
    _, std = _rolling(x, window, max(2, window // 2))
    std[:window] = np.nan
    return std


def _ewm(x: np.ndarray, alpha: np.ndarray, min_periods: np.ndarray) -> np.ndarray:
    """Pandas' ``ewm(alpha=..., adjust=False, min_periods=...).mean()`` down the rows of (rows, K, S), bit for bit.

    One loop over the rows for K averages of S series at once (alpha and min_periods are (K, 1)).
    The inputs here are NaN only before their first value (a diff's first row, a MACD line before
    its slow average fills), so each column's recursion starts at its first finite value.
    """
    keep = 1.0 - alpha  # pandas: old weight (1 - alpha), new weight alpha, their sum as the divisor
    total = keep + alpha
    finite = ~np.isnan(x)
    starts = set(np.unique(finite.argmax(axis=0)).tolist())  # the rows where some column's first value is
    out = np.empty(x.shape)
    weighted = x[0].copy()
    for t in range(len(x)):
        cur = x[t]
        if t in starts:  # some column's first value: its recursion begins here
            weighted = np.where(np.isnan(weighted), cur, weighted)
        mixed = (keep * weighted + alpha * cur) / total
        weighted = np.where(weighted != cur, mixed, weighted)  # pandas keeps the average where it equals the value
        out[t] = weighted
    return np.where(np.cumsum(finite, axis=0) >= min_periods, out, np.nan)


def _alpha(span: float | None = None, alpha: float | None = None) -> tuple[float, int]:
    """The smoothing factor pandas derives from a span or an alpha (via its centre of mass); the warm-up."""
    com = (span - 1) / 2 if span is not None else (1 - alpha) / alpha  # type: ignore[operator]
    warmup = int(span) if span is not None else int(1 / alpha)  # type: ignore[operator]
    return 1.0 / (1.0 + com), warmup


def _lagged_diff(x: np.ndarray, k: int) -> np.ndarray:
    """x[t] - x[t-k] down the rows (the tails are gapless, so every lag is exactly k candles)."""
    out = np.full(x.shape, np.nan)
    if len(x) > k:
        out[k:] = x[k:] - x[:-k]
    return out


def _features(c: dict[str, np.ndarray], cfg: FeatureConfig, step: int, rows: int, exogenous: list | None):
    """The features of the last ``rows`` rows of (rows, series) candle arrays: names and (series, rows, F).

    Names in compute_features' order; what depends on one row only is computed on those rows alone.
    """
    last = {k: v[-rows:] for k, v in c.items()}
    ts = last["timestamp"]
    out: dict[str, np.ndarray] = {}
    ret_1 = _lagged_diff(np.log(c["close"]), 1)
    log_volume = np.log1p(c["volume"])  # every row: pandas' running sums start at the first (bit for bit)
    vol_mean, vol_std = _rolling(log_volume, cfg.vol_window)
    hour, dow = _hour_and_weekday(ts)
    out["ret_1"] = ret_1
    out["range"] = np.log(last["high"] / last["low"])
    out["body"] = np.log(last["close"] / last["open"])
    out["rvol"] = _rolling_std(ret_1, cfg.vol_window)
    out["volume_z"] = _zscore(log_volume, vol_mean, vol_std)
    out["hour_sin"], out["hour_cos"] = np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24)
    out["dow_sin"], out["dow_cos"] = np.sin(2 * np.pi * dow / 7), np.cos(2 * np.pi * dow / 7)
    if cfg.indicators:
        out.update(_indicators(c, cfg))
    if cfg.realized:
        out.update(_realized(c, cfg.realized, step))
    for tf in cfg.higher_timeframes:
        out.update(_higher_timeframe(c, step, tf, cfg.htf_window))
    for source, frame in zip(cfg.exogenous, exogenous or [], strict=True):
        known_at, table, names = exogenous_lookup(frame, source)
        latest = np.searchsorted(known_at, (ts + step).ravel(), side="right").reshape(ts.shape) - 1  # -1: none yet
        values = np.full((*ts.shape, len(names)), np.nan)
        values[latest >= 0] = table[latest[latest >= 0]]
        out.update({name: values[..., k] for k, name in enumerate(names)})
    columns = list(out)
    return columns, np.stack([out[k][-rows:].T for k in columns], axis=2)


def _indicators(c: dict[str, np.ndarray], cfg: FeatureConfig) -> dict[str, np.ndarray]:
    """``compute._indicators`` on (rows, series) arrays."""
    close, high, low = c["close"], c["high"], c["low"]
    log_close = np.log(close)
    out: dict[str, np.ndarray] = {}
    for k in cfg.return_lags:
        out[f"ret_{k}"] = _lagged_diff(log_close, k)
    for w in cfg.ma_windows:
        out[f"ma_ratio_{w}"] = log_close - np.log(_rolling(close, w, std=False)[0])
    delta = _lagged_diff(close, 1)
    previous = np.full(close.shape, np.nan)
    previous[1:] = close[:-1]
    true_range = np.maximum.reduce([high - low, np.abs(high - previous), np.abs(low - previous)])
    fast, slow, signal = cfg.macd
    # the five averages of the candles in one loop: gain, loss, ATR's true range, MACD's fast and slow
    params = [_alpha(alpha=1 / cfg.rsi_window)] * 2 + [_alpha(alpha=1 / cfg.atr_window)]
    params += [_alpha(span=fast), _alpha(span=slow)]
    gain, loss, atr, ema_fast, ema_slow = _ewm(
        np.stack([np.maximum(delta, 0.0), -np.minimum(delta, 0.0), true_range, close, close], axis=1),
        np.array([[a] for a, _ in params]),
        np.array([[w] for _, w in params]),
    ).transpose(1, 0, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = gain + loss
        rsi = (gain - loss) / np.where(total == 0.0, np.nan, total)
    out["rsi"] = np.where(np.isnan(gain), np.nan, np.where(np.isnan(rsi), 0.0, rsi))
    line = (ema_fast - ema_slow) / close
    alpha, warmup = _alpha(span=signal)
    sig = _ewm(line[:, None, :], np.array([[alpha]]), np.array([[warmup]]))[:, 0, :]
    out["macd"], out["macd_signal"], out["macd_hist"] = line, sig, line - sig
    mean, std = _rolling(close, cfg.bb_window)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = 4 * std
        pctb = (close - (mean - 2 * std)) / np.where(width == 0.0, np.nan, width)
    out["bb_pctb"] = np.where(np.isnan(std), np.nan, np.where(np.isnan(pctb), 0.5, pctb))
    out["atr"] = atr / close
    return out


def _higher_timeframe(c: dict[str, np.ndarray], step: int, tf: str, window: int) -> dict[str, np.ndarray]:
    """``compute._higher_timeframe`` on gapless (rows, series) arrays: buckets by index arithmetic, no groupby.

    Row t of series s sits in slot r0[s] + t of its bucket grid (r0: the first row's slot in its
    bucket); bucket b holds rows b*k - r0 .. (b+1)*k - r0 - 1, and row t sees the last bucket that
    closed by its own close, (r0 + t + 1) // k - 1.
    """
    big = timeframe_ms(tf)
    if big <= step or big % step:
        raise ValueError(f"higher timeframe {tf} must be a multiple of the candles' timeframe ({step} ms)")
    k = big // step
    ts = c["timestamp"]
    n, series = ts.shape
    r0 = (ts[0] - ts[0] // big * big) // step  # (S,)
    buckets = int((r0.max() + n - 1) // k + 1)
    b = np.arange(buckets)[:, None]
    first = np.clip(b * k - r0, 0, n - 1)  # (B, S) first and last row of each bucket
    last = np.clip((b + 1) * k - r0 - 1, 0, n - 1)
    exists = (b * k - r0 <= n - 1) & ((b + 1) * k - r0 - 1 >= 0)
    cols = np.arange(series)
    slot = r0 + np.arange(n)[:, None]  # (rows, S)
    grid_high = np.full((buckets * k, series), -np.inf)
    grid_low = np.full((buckets * k, series), np.inf)
    grid_high[slot, cols] = c["high"]
    grid_low[slot, cols] = c["low"]
    high = grid_high.reshape(buckets, k, series).max(axis=1)
    low = grid_low.reshape(buckets, k, series).min(axis=1)
    bucket_close = np.where(exists, c["close"][last, cols], np.nan)
    complete = exists & ((b > 0) | (last - first + 1 == k))
    log_close = np.log(np.where(complete, bucket_close, np.nan))
    ret = _lagged_diff(log_close, 1)  # buckets of a gapless tail are contiguous
    name = f"htf_{tf}"
    with np.errstate(invalid="ignore", divide="ignore"):
        bucket_range = np.where(complete, np.log(high / low), np.nan)
    rvol = _rolling_std(ret, window)
    seen = (slot + 1) // k - 1  # (rows, S): the bucket each row sees; -1 before the first one closed
    visible = seen >= 0
    pick = np.maximum(seen, 0)

    def joined(x: np.ndarray) -> np.ndarray:
        return np.where(visible, x[pick, cols], np.nan)

    return {f"{name}_ret": joined(ret), f"{name}_range": joined(bucket_range), f"{name}_rvol": joined(rvol)}
