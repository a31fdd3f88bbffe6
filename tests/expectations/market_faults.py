"""Seeded synthetic candle files with the faults of the real ones, planted where the tests know them.

The real files in ../shared/data carry exchange outages, vendor filler candles, conflicting duplicate
rows, a bogus first candle, a partial last candle and illiquid no-trade gaps. These builders plant the
same faults into ``synthetic_candles`` at known rows, so the contract's verdicts can be asserted exactly
on any machine, with or without the real files beside the repo.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import timeframe_ms

START = 1_600_560_000_000  # 2020-09-20 00:00 UTC, where the real main set starts
SEED = 5

# The main set's outages: 10 holes, 20 missing candles, the longest 4 (as in the real 1h files),
# at these row positions of the gap-free series; a flat zero-volume candle sits before the first two.
OUTAGES: tuple[tuple[int, int], ...] = (
    (400, 4), (900, 3), (1400, 2), (1900, 2), (2400, 2), (2900, 2), (3400, 2), (3900, 1), (4300, 1), (4700, 1)
)  # fmt: skip
FILLER_BEFORE = (400, 900)

# The dirty export: hours that exist twice with different values, and the flat candles a vendor filled in.
DUPLICATED_HOURS = tuple(range(1000, 2200, 30))  # 40 hours
FILLER_ROWS = tuple(range(2500, 2512))  # 12 flat zero-volume candles filling an "outage"
PARTIAL_SHARE = 0.1  # the last candle was exported a few minutes after it opened


def market(symbol: str, n: int, timeframe: str = "1h", seed: int = SEED) -> pd.DataFrame:
    """A clean, gap-free synthetic series starting at START (aligned to any timeframe up to 1d)."""
    return synthetic_candles(symbol, START, n, timeframe=timeframe, seed=seed)


def flatten(df: pd.DataFrame, rows: tuple[int, ...] | list[int]) -> pd.DataFrame:
    """Turn ``rows`` into vendor filler: open = high = low = close = the previous close, volume 0."""
    out = df.copy()
    for row in rows:
        out.loc[row, ["open", "high", "low", "close"]] = out.loc[row - 1, "close"]
        out.loc[row, "volume"] = 0.0
    return out


def drop_holes(df: pd.DataFrame, holes: tuple[tuple[int, int], ...] | list[tuple[int, int]]) -> pd.DataFrame:
    """Remove ``(first_row, length)`` runs of candles, as an exchange outage does."""
    rows = [r for first, length in holes for r in range(first, first + length)]
    return df.drop(index=rows).reset_index(drop=True)


def main_set(pair: str, n: int = 5000) -> pd.DataFrame:
    """An hourly file like the real main set: 10 outages (20 hours, longest 4), 2 flat candles before outages."""
    before = [first - 1 for first in FILLER_BEFORE]
    return drop_holes(flatten(market(f"{pair}/USDT", n), before), OUTAGES)


def with_partial_last_candle(df: pd.DataFrame) -> pd.DataFrame:
    """The last candle as seen minutes after it opened: a fraction of its volume, a narrow range."""
    out = df.copy()
    last = out.index[-1]
    out.loc[last, "volume"] *= PARTIAL_SHARE
    out.loc[last, ["high", "low", "close"]] = [out.loc[last, "open"]] * 3
    return out


def with_conflicting_duplicates(df: pd.DataFrame, hours: tuple[int, ...]) -> pd.DataFrame:
    """A second, different copy of each of ``hours`` (an old and a new export format), sorted stably."""
    copies = df.loc[list(hours)].copy()
    copies[["open", "high", "low", "close"]] *= 1.0004
    copies["volume"] *= 0.5
    both = pd.concat([df, copies], ignore_index=True)
    return both.sort_values("timestamp", kind="stable").reset_index(drop=True)


def with_bogus_first_candle(df: pd.DataFrame) -> pd.DataFrame:
    """Row 0 opens and peaks at ~3.8x the price, as the CryptoDataDownload BTC file's first candle does."""
    out = df.copy()
    out.loc[0, ["open", "high"]] = out.loc[0, "close"] * 3.8
    return out


def dirty_export(n: int = 3000) -> pd.DataFrame:
    """An hourly vendor export: a bogus first candle, conflicting duplicates, filler, a partial last candle."""
    clean = market("BTC/USDT", n, seed=SEED + 1)
    faulty = with_bogus_first_candle(with_partial_last_candle(flatten(clean, FILLER_ROWS)))
    return with_conflicting_duplicates(faulty, DUPLICATED_HOURS)


def dirty_daily(n: int = 1400) -> pd.DataFrame:
    """A daily vendor export: one day twice with different values, and a partial last day."""
    return with_conflicting_duplicates(with_partial_last_candle(market("BTC/USDT", n, "1d")), (700,))


def no_trade_gaps(timeframe: str, n: int, holes: int, seed: int) -> tuple[pd.DataFrame, int, int]:
    """An illiquid pair: ``holes`` no-trade stretches of 1-3 candles at seeded rows, none adjacent.

    Returns:
        The frame, the number of gaps and the number of missing candles planted.
    """
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.choice(np.arange(2, n // 4 - 1), size=holes, replace=False)) * 4  # >= 4 rows apart
    lengths = rng.integers(1, 4, size=holes)
    frame = drop_holes(
        market("XRP/ETH", n, timeframe, seed=seed), list(zip(starts.tolist(), lengths.tolist(), strict=True))
    )
    return frame, holes, int(lengths.sum())


def last_open(df: pd.DataFrame) -> int:
    """Open time of the last candle (epoch ms)."""
    return int(df["timestamp"].iloc[-1])


def minutes_into_last(df: pd.DataFrame, timeframe: str, minutes: int) -> int:
    """A clock ``minutes`` after the last candle opened; used as ``now`` of a live check."""
    assert minutes * 60_000 < timeframe_ms(timeframe)
    return last_open(df) + minutes * 60_000
