"""Higher-timeframe candles from stored lower-timeframe ones, exactly as the exchange builds them.

An exchange's 1h candle is the first open, highest high, lowest low, last close and summed volume of
its 1m candles, and it exists even when some minutes had no trades (or the exchange was down for a
few): those minutes simply contribute nothing. So a bucket with interior gaps is still the exchange's
candle. A bucket that runs past either end of what is stored is not: its missing part was never
fetched, and emitting it would invent a candle, so it is dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from candlecast.schema import CANDLE_COLUMNS, timeframe_ms


def resample(frame: pd.DataFrame, timeframe: str, to: str) -> pd.DataFrame:
    """Aggregate ``frame`` (candles of ``timeframe``) into candles of ``to``.

    Buckets are aligned to the epoch (UTC), as exchanges do for minutes to days; weeks would start on
    Thursday, so they are refused.

    Returns:
        CANDLE_COLUMNS, one row per bucket wholly inside the stored range and holding at least one candle.
    """
    src, dst = timeframe_ms(timeframe), timeframe_ms(to)
    if dst <= src or dst % src:
        raise ValueError(f"cannot resample {timeframe} to {to}: the target must be a whole multiple of the source")
    if to.endswith("w"):
        raise ValueError("weekly candles start on Monday on exchanges, not on the epoch's Thursday: not supported")
    if frame.empty:
        return frame[CANDLE_COLUMNS].copy()
    ts = frame["timestamp"].to_numpy(dtype=np.int64)
    if np.any(np.diff(ts) <= 0):
        raise ValueError("resample needs candles sorted by unique timestamp: read them from the store")
    bucket = ts - ts % dst
    out = (
        frame.assign(timestamp=bucket)
        .groupby("timestamp", sort=True)
        .agg(
            open=("open", "first"),
            high=("high", "max"),
            low=("low", "min"),
            close=("close", "last"),
            volume=("volume", "sum"),
        )  # fmt: skip
        .reset_index()
    )
    first_whole = ts[0] if ts[0] % dst == 0 else bucket[0] + dst
    last_whole = bucket[-1] if ts[-1] + src == bucket[-1] + dst else bucket[-1] - dst
    out = out[(out["timestamp"] >= first_whole) & (out["timestamp"] <= last_whole)]
    return out[CANDLE_COLUMNS].reset_index(drop=True)
