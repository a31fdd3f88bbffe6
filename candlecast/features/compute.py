"""Features from candles: pure pandas and NumPy, causal by construction.

Every feature at row t uses only what was known when candle t closed: trailing windows and
recursive averages over rows up to t, higher-timeframe candles that had closed by then, other
assets' candles of the same close time, and exogenous values published by then. So a frame
truncated at t gives the same rows before t (tests/unit/test_lookahead.py checks every column on
real data). Targets are the only forward-looking columns, named ``target_<k>``: the cumulative log
return from the close at t to the close at t+k. Nothing here is fitted: scalers and winsorizing
are fitted per fold on training rows only (candlecast.features.windows).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from candlecast.config import FeatureConfig, RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.features.exogenous import join_exogenous, read_exogenous
from candlecast.features.realized import realized_features, realized_warmup
from candlecast.io import write_parquet
from candlecast.schema import CANDLE_COLUMNS, SeriesKey, timeframe_ms
from candlecast.settings import Settings

BASE_COLUMNS: list[str] = ["ret_1", "range", "body", "rvol", "volume_z"]
CALENDAR_COLUMNS: list[str] = ["hour_sin", "hour_cos", "dow_sin", "dow_cos"]
#: The features of FeatureConfig(indicators=False): the walking skeleton's set.
FEATURE_COLUMNS: list[str] = BASE_COLUMNS + CALENDAR_COLUMNS
_NOT_FEATURES = {"timestamp", "close"}
_Data = TypeVar("_Data", pd.Series, pd.DataFrame)


def target_columns(horizon: int) -> list[str]:
    """The target columns ``target_1`` .. ``target_<horizon>``: the cumulative log return k candles ahead."""
    return [f"target_{k}" for k in range(1, horizon + 1)]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The input columns of a feature frame: everything but timestamp, close and targets."""
    return [c for c in frame.columns if c not in _NOT_FEATURES and not c.startswith("target_")]


def cross_key(symbol: str) -> str:
    """Column prefix of a cross asset, e.g. 'BTC/USDT' -> 'x_btc_usdt'."""
    return "x_" + symbol.lower().replace("/", "_").replace(":", "_")


def compute_features(
    candles: pd.DataFrame,
    cfg: FeatureConfig,
    timeframe: str = "1h",
    cross: dict[str, pd.DataFrame] | None = None,
    exogenous: list[pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Return timestamp, close and the input features (NaN during warm-up); no targets.

    Args:
        candles: one series' candles (CANDLE_COLUMNS), any order.
        cfg: which features.
        timeframe: the candles' timeframe (higher-timeframe context and exogenous timing need it).
        cross: candles of each of ``cfg.cross_assets`` by symbol, same timeframe.
        exogenous: one frame per ``cfg.exogenous`` entry, as read by candlecast.features.exogenous.
    """
    missing = [c for c in CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing}; expected {CANDLE_COLUMNS}")
    c = candles.sort_values("timestamp").reset_index(drop=True)
    step = timeframe_ms(timeframe)
    out = _candle_features(c, cfg, step)
    if cfg.indicators:
        out = pd.concat([out, _indicators(c, cfg, step)], axis=1)
    if cfg.realized:
        out = pd.concat([out, realized_features(c, cfg.realized, step)], axis=1)
    for tf in cfg.higher_timeframes:
        out = pd.concat([out, _higher_timeframe(c, step, tf, cfg.htf_window)], axis=1)
    for symbol in cfg.cross_assets:
        if cross is None or symbol not in cross:
            raise ValueError(f"cross asset {symbol} is configured but its candles were not given: load them too")
        out = pd.concat([out, _cross_asset(c["timestamp"], cross[symbol], cross_key(symbol), cfg, step)], axis=1)
    if cfg.exogenous:
        if exogenous is None or len(exogenous) != len(cfg.exogenous):
            raise ValueError("exogenous series are configured but were not given: read them with read_exogenous")
        for source, frame in zip(cfg.exogenous, exogenous, strict=True):
            out = pd.concat([out, join_exogenous(c["timestamp"], step, frame, source)], axis=1)
    if cfg.denoise == "hampel":
        inputs = [col for col in feature_columns(out) if col not in CALENDAR_COLUMNS]
        out[inputs] = out[inputs].apply(lambda s: hampel(s, cfg.hampel_window, cfg.hampel_sigmas))
    return out


def _rolling_std(x: pd.Series, window: int) -> pd.Series:
    """Rolling std that needs half its window filled, so one missing candle does not blank it for a whole window.

    Rows before the frame has had a full window (its warm-up) stay NaN, as with a plain rolling std.
    """
    std = x.rolling(window, min_periods=max(2, window // 2)).std()
    return std.where(np.arange(len(x)) >= window)


def _gapless_diff(x: pd.Series, ts: pd.Series, k: int, step: int) -> pd.Series:
    """x[t] - x[t-k], only where t-k is exactly k candles earlier: a return never bridges a missing candle."""
    return x.diff(k).where(ts.diff(k) == k * step)


def _candle_features(c: pd.DataFrame, cfg: FeatureConfig, step: int) -> pd.DataFrame:
    """The base features on NumPy arrays: a serving request's 200 candles in about 1 ms, not 20-40.

    Pandas stays only for the two rolling statistics, so their values are bit for bit those of its own
    rolling algorithm; the rest is elementwise arithmetic, equal to the Series version it replaced
    (tests/unit/test_candle_features_numpy.py keeps a copy of that version and compares).
    """
    ts = c["timestamp"].to_numpy("int64")
    close = c["close"].to_numpy("float64")
    ret_1 = _gapless_diff_array(np.log(close), ts, 1, step)
    log_volume = np.log1p(c["volume"].to_numpy("float64"))
    volume = pd.Series(log_volume).rolling(cfg.vol_window)
    vol_mean, vol_std = volume.mean().to_numpy(), volume.std().to_numpy()
    hour, dow = _hour_and_weekday(ts)
    return pd.DataFrame(
        {
            "timestamp": ts,
            "close": close,
            "ret_1": ret_1,
            "range": np.log(c["high"].to_numpy() / c["low"].to_numpy()),
            "body": np.log(c["close"].to_numpy() / c["open"].to_numpy()),
            "rvol": _rolling_std(pd.Series(ret_1), cfg.vol_window).to_numpy(),
            "volume_z": _zscore(log_volume, vol_mean, vol_std),
            "hour_sin": np.sin(2 * np.pi * hour / 24),
            "hour_cos": np.cos(2 * np.pi * hour / 24),
            "dow_sin": np.sin(2 * np.pi * dow / 7),
            "dow_cos": np.cos(2 * np.pi * dow / 7),
        }
    )


def _gapless_diff_array(x: np.ndarray, ts: np.ndarray, k: int, step: int) -> np.ndarray:
    """``_gapless_diff`` on arrays: x[t] - x[t-k] where t-k is exactly k candles earlier, else NaN."""
    out = np.full(len(x), np.nan)
    if len(x) > k:
        out[k:] = np.where(ts[k:] - ts[:-k] == k * step, x[k:] - x[:-k], np.nan)
    return out


def _zscore(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std; a flat window (zero spread) scores 0, not ±inf; NaN while the window fills."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - mean) / np.where(std == 0.0, np.nan, std)
    return np.where(np.isnan(std), np.nan, np.where(np.isnan(z), 0.0, z))


def _hour_and_weekday(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTC hour of day (with minutes as a fraction) and day of week (Monday 0, with the hour as a fraction)."""
    hour = (ts // 3_600_000) % 24 + ((ts // 60_000) % 60) / 60.0
    weekday = (ts // 86_400_000 + 3) % 7  # 1970-01-01, day 0, was a Thursday (3)
    return hour, weekday + hour / 24.0


def _ewm(x: _Data, span: float | None = None, alpha: float | None = None) -> _Data:
    """The recursive exponential mean (row t depends on rows <= t only), NaN for its first span or 1/alpha rows.

    Down the rows of a frame too: one call for the tails of many series (candlecast.features.last_window).
    """
    if span is not None:
        warmup = int(span)
    elif alpha is not None:
        warmup = int(1 / alpha)
    else:
        raise ValueError("an exponential mean needs a span or an alpha")
    return x.ewm(span=span, alpha=alpha, adjust=False, min_periods=warmup).mean()


def _indicators(c: pd.DataFrame, cfg: FeatureConfig, step: int) -> pd.DataFrame:
    """Classic technical indicators, scale-free (ratios or logs) so series of any price pool together."""
    close, high, low = (c[k].astype("float64") for k in ("close", "high", "low"))
    log_close = np.log(close)
    out: dict[str, pd.Series] = {}
    for k in cfg.return_lags:
        out[f"ret_{k}"] = _gapless_diff(log_close, c["timestamp"], k, step)
    for w in cfg.ma_windows:
        out[f"ma_ratio_{w}"] = log_close - np.log(close.rolling(w).mean())
    delta = close.diff()
    gain = _ewm(delta.clip(lower=0), alpha=1 / cfg.rsi_window)
    loss = _ewm(-delta.clip(upper=0), alpha=1 / cfg.rsi_window)
    # RSI in [-1, 1]: 2 * RSI/100 - 1; a window without losses is +1, without moves 0
    out["rsi"] = ((gain - loss) / (gain + loss).replace(0.0, np.nan)).fillna(0.0).where(gain.notna())
    fast, slow, signal = cfg.macd
    line = (_ewm(close, span=fast) - _ewm(close, span=slow)) / close
    sig = _ewm(line, span=signal)
    out["macd"], out["macd_signal"], out["macd_hist"] = line, sig, line - sig
    mean, std = close.rolling(cfg.bb_window).mean(), close.rolling(cfg.bb_window).std()
    out["bb_pctb"] = ((close - (mean - 2 * std)) / (4 * std).replace(0.0, np.nan)).fillna(0.5).where(std.notna())
    true_range = pd.concat([high - low, (high - close.shift()).abs(), (low - close.shift()).abs()], axis=1).max(
        axis=1, skipna=False
    )
    out["atr"] = _ewm(true_range, alpha=1 / cfg.atr_window) / close
    return pd.DataFrame(out)


def _higher_timeframe(c: pd.DataFrame, step: int, tf: str, window: int) -> pd.DataFrame:
    """Features of the last *closed* higher-timeframe candle at each row's close time.

    A bucket is built from the base candles it has, as an exchange builds its own 4h candle through a
    short outage, so one missing candle does not blank the context for days; only the first bucket of
    the frame must be complete (it may have been cut off by where the frame starts). A bucket becomes
    visible to the row whose close time equals the bucket's close time, never earlier.
    """
    big = timeframe_ms(tf)
    if big <= step or big % step:
        raise ValueError(f"higher timeframe {tf} must be a multiple of the candles' timeframe ({step} ms)")
    ts = c["timestamp"].astype("int64")
    bucket = ts // big * big
    agg = (
        c.assign(bucket=bucket)
        .groupby("bucket", sort=True)
        .agg(
            open=("open", "first"),
            high=("high", "max"),
            low=("low", "min"),
            close=("close", "last"),
            n=("close", "size"),
        )
    )
    complete = pd.Series(True, index=agg.index)
    if len(agg):
        complete.iloc[0] = agg["n"].iloc[0] == big // step
    log_close = np.log(agg["close"].where(complete))
    contiguous = pd.Series(agg.index, index=agg.index).diff() == big
    ret = log_close.diff().where(contiguous)
    name = f"htf_{tf}"
    feats = pd.DataFrame(
        {
            f"{name}_ret": ret,
            f"{name}_range": np.log(agg["high"] / agg["low"]).where(complete),
            f"{name}_rvol": _rolling_std(ret, window),
        }
    )
    feats["available"] = agg.index + big  # the bucket's close time
    rows = pd.DataFrame({"available": ts + step})  # each row's close time
    joined = pd.merge_asof(rows, feats.sort_values("available"), on="available", direction="backward")
    return joined.drop(columns="available")


def _cross_asset(ts: pd.Series, other: pd.DataFrame, key: str, cfg: FeatureConfig, step: int) -> pd.DataFrame:
    """Another asset's return and volatility at the same candle (same close time: known at t)."""
    o = other.sort_values("timestamp").drop_duplicates("timestamp")
    log_close = np.log(o["close"].astype("float64"))
    contiguous = o["timestamp"].diff() == step
    ret = log_close.diff().where(contiguous)
    feats = pd.DataFrame(
        {
            "timestamp": o["timestamp"].astype("int64"),
            f"{key}_ret_1": ret,
            f"{key}_rvol": ret.rolling(cfg.vol_window).std(),
        }
    )
    for k in cfg.return_lags if cfg.indicators else []:
        feats[f"{key}_ret_{k}"] = log_close.diff(k)
    joined = pd.DataFrame({"timestamp": ts.astype("int64")}).merge(feats, on="timestamp", how="left")
    return joined.drop(columns="timestamp")


def hampel(x: pd.Series, window: int, sigmas: float) -> pd.Series:
    """Replace outliers by the trailing median: |x - median| > sigmas * 1.4826 * MAD over the last ``window``."""
    med = x.rolling(window).median()
    mad = (x - med).abs().rolling(window).median() * 1.4826
    outlier = (x - med).abs() > sigmas * mad
    return x.where(~outlier, med)


def add_targets(features: pd.DataFrame, horizon: int, timeframe: str) -> pd.DataFrame:
    """Append target_1..target_H; a target that would span a missing candle is NaN, never bridged.

    Targets come from the raw close (never from a denoised or winsorized input).
    """
    out = features.copy()
    log_close = np.log(out["close"])
    step = timeframe_ms(timeframe)
    targets = {}
    for k in range(1, horizon + 1):
        contiguous = (out["timestamp"].shift(-k) - out["timestamp"]) == k * step
        targets[f"target_{k}"] = (log_close.shift(-k) - log_close).where(contiguous)
    return pd.concat([out, pd.DataFrame(targets)], axis=1)


def warmup_rows(cfg: FeatureConfig, timeframe: str = "1h") -> int:
    """Candles needed before the first row whose features are all defined and settled.

    Recursive averages (RSI, MACD, ATR) get four spans, after which their start-up weight is
    under 2%: predicting from a tail of the history then matches features computed on all of it.
    """
    rows = [cfg.vol_window + 1]
    if cfg.indicators:
        fast, slow, signal = cfg.macd
        rows += [*(k + 1 for k in cfg.return_lags), *cfg.ma_windows, cfg.bb_window]
        rows += [4 * cfg.rsi_window, 4 * cfg.atr_window, 4 * (slow + signal)]
    step = timeframe_ms(timeframe)
    if cfg.realized:
        rows.append(realized_warmup(step))
    for tf in cfg.higher_timeframes:
        rows.append((cfg.htf_window + 2) * timeframe_ms(tf) // step)
    return max(rows) + (2 * cfg.hampel_window if cfg.denoise == "hampel" else 0)


def series_features(
    candles: pd.DataFrame, cfg: FeatureConfig, timeframe: str, cross: dict[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """Features and targets of one series, reading the configured exogenous files."""
    exogenous = [read_exogenous(source.path, source.columns) for source in cfg.exogenous]
    frame = compute_features(candles, cfg, timeframe, cross=cross, exogenous=exogenous)
    return add_targets(frame, cfg.horizon, timeframe)


def build_feature_file(settings: Settings, cfg: RunConfig, series: SeriesKey) -> Path:
    """Features and targets of one stored series, written where the sweep and evaluation read them."""
    store = CandleStore(settings.candles_dir)
    candles = store.read(series)
    if candles.empty:
        raise ValueError(f"no candles stored for {series}: run the ingest stage first")
    cross = {}
    for symbol in cfg.features.cross_assets:
        other = store.read(SeriesKey(series.exchange, symbol, series.timeframe))
        if other.empty:
            raise ValueError(f"cross asset {symbol} has no stored candles: add it to data.symbols and ingest it")
        cross[symbol] = other
    frame = series_features(candles, cfg.features, series.timeframe, cross)
    path = settings.features_dir / f"{series.slug}.parquet"
    write_parquet(frame, path)
    return path
