"""A seeded daily sentiment index for the synthetic market, shaped like the Crypto Fear & Greed Index.

The real index (0 = extreme fear, 100 = extreme greed) is computed each day from the previous day's
market and social data and published around 00:00 UTC. The synthetic one follows the same timing:
the value stamped day D depends only on candles that closed before D (the last week's return, which
lifts greed, and the last day's volatility, which feeds fear) plus persistent noise, so the demo
exercises the point-in-time exogenous join with a series that carries a little information.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from candlecast.devtools.synthetic import HOURLY_VOL

_DAY_MS = 86_400_000


def synthetic_fear_greed(candles: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``timestamp`` (ms, the day's 00:00 UTC) and ``fear_greed`` (int 0-100), one row per complete prior day."""
    close = candles.set_index(pd.to_datetime(candles["timestamp"], unit="ms", utc=True))["close"]
    log_ret = np.log(close).diff()
    days = log_ret.resample("1D")
    complete = days.count() >= days.size().max() - 1  # a day still forming at the end is never published
    daily = np.log(close.resample("1D").last())
    week = daily - daily.shift(7).fillna(daily.iloc[0])  # the first week: the return since the market opened
    frame = pd.DataFrame({"vol": days.std(), "week": week})[complete].dropna()
    # fixed scales (the synthetic market's own volatility), not sample statistics: nothing from later days
    z_vol = (frame["vol"] - HOURLY_VOL) / (0.5 * HOURLY_VOL)
    z_week = frame["week"] / (HOURLY_VOL * np.sqrt(7 * 24))
    rng = np.random.default_rng(zlib.crc32(f"fear-greed:{seed}".encode()))
    noise = np.zeros(len(frame))
    for i in range(1, len(frame)):  # sentiment is sticky: yesterday's mood carries over
        noise[i] = 0.8 * noise[i - 1] + rng.normal(0, 6.0)
    index = 50 + 15 * np.tanh(z_week.to_numpy()) - 12 * np.tanh(z_vol.to_numpy()) + noise
    published = frame.index + pd.Timedelta(days=1)  # day D's value comes from day D-1's market
    return pd.DataFrame(
        {
            "timestamp": (published.asi8 // 1_000_000).astype("int64"),
            "fear_greed": np.clip(np.round(index), 0, 100).astype("int64"),
        }
    )
