"""Features from candles: pure pandas, causal by construction.

Every feature at row t uses only candles up to and including t (shifts and trailing windows),
so a frame truncated at t gives the same rows before t. Targets are the only forward-looking
columns, named ``target_<k>``: the cumulative log return from the close at t to the close at t+k.
Nothing here is fitted: scalers are fitted per fold on training rows only (candlecast.datasets).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from candlecast.config import FeatureConfig, RunConfig
from candlecast.io import write_parquet
from candlecast.schema import CANDLE_COLUMNS, SeriesKey, timeframe_ms
from candlecast.settings import Settings
from candlecast.store import CandleStore

FEATURE_COLUMNS: list[str] = [
    "ret_1",
    "range",
    "body",
    "rvol",
    "volume_z",
    "hour_sin",
    "hour_cos",
    "dow_sin",
    "dow_cos",
]


def target_columns(horizon: int) -> list[str]:
    return [f"target_{k}" for k in range(1, horizon + 1)]


def compute_features(candles: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    """Return timestamp, close, FEATURE_COLUMNS (NaN during warm-up) and no targets."""
    missing = [c for c in CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing}; expected {CANDLE_COLUMNS}")
    c = candles.sort_values("timestamp").reset_index(drop=True)
    close = c["close"].astype("float64")
    log_close = np.log(close)
    ret_1 = log_close.diff()
    log_volume = np.log1p(c["volume"].astype("float64"))
    vol_mean = log_volume.rolling(cfg.vol_window).mean()
    vol_std = log_volume.rolling(cfg.vol_window).std()
    ts = pd.to_datetime(c["timestamp"], unit="ms", utc=True)
    hour = ts.dt.hour + ts.dt.minute / 60.0
    dow = ts.dt.dayofweek + hour / 24.0
    return pd.DataFrame(
        {
            "timestamp": c["timestamp"].astype("int64"),
            "close": close,
            "ret_1": ret_1,
            "range": np.log(c["high"] / c["low"]),
            "body": np.log(c["close"] / c["open"]),
            "rvol": ret_1.rolling(cfg.vol_window).std(),
            # A flat volume window has zero spread: its z-score is 0, not ±inf.
            "volume_z": ((log_volume - vol_mean) / vol_std.replace(0.0, np.nan)).fillna(0.0).where(vol_std.notna()),
            "hour_sin": np.sin(2 * np.pi * hour / 24),
            "hour_cos": np.cos(2 * np.pi * hour / 24),
            "dow_sin": np.sin(2 * np.pi * dow / 7),
            "dow_cos": np.cos(2 * np.pi * dow / 7),
        }
    )


def add_targets(features: pd.DataFrame, horizon: int, timeframe: str) -> pd.DataFrame:
    """Append target_1..target_H; a target that would span a missing candle is NaN, never bridged."""
    out = features.copy()
    log_close = np.log(out["close"])
    step = timeframe_ms(timeframe)
    for k in range(1, horizon + 1):
        contiguous = (out["timestamp"].shift(-k) - out["timestamp"]) == k * step
        out[f"target_{k}"] = (log_close.shift(-k) - log_close).where(contiguous)
    return out


def warmup_rows(cfg: FeatureConfig) -> int:
    """Candles needed before the first row whose features are all defined."""
    return cfg.vol_window


def build_feature_file(settings: Settings, cfg: RunConfig, series: SeriesKey) -> Path:
    """Features and targets of one stored series, written where the sweep and evaluation read them."""
    candles = CandleStore(settings.candles_dir).read(series)
    if candles.empty:
        raise ValueError(f"no candles stored for {series}: run the ingest stage first")
    frame = add_targets(compute_features(candles, cfg.features), cfg.features.horizon, series.timeframe)
    path = settings.features_dir / f"{series.slug}.parquet"
    write_parquet(frame, path)
    return path
