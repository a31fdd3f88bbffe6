"""Missing candles: found, listed and classified, never filled.

A gap is a run of candle open times on the timeframe grid, strictly between two stored candles, with
no candle. Filling it would invent prices, so candlecast only reports it: per series in the manifest,
in the ingest report and in `candlecast status`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from candlecast.schema import SeriesKey, timeframe_ms

#: Missing in every other series of the same exchange and timeframe that spans it: an exchange outage.
EXCHANGE_WIDE = "exchange-wide"
#: Missing in this series only: no trades, a halted market, or a hole in an imported file.
SERIES_ONLY = "series-only"


@dataclass(frozen=True)
class Gap:
    """Candles ``start`` .. ``end`` (open times, ms, both inclusive) are missing: ``missing`` of them."""

    start: int
    end: int
    missing: int
    kind: str = SERIES_ONLY

    def to_dict(self) -> dict[str, int | str]:
        """A JSON-ready dict for the manifest and the ingest report."""
        return asdict(self)


def find_gaps(timestamps: np.ndarray | Sequence[int], timeframe: str) -> list[Gap]:
    """Gaps between consecutive sorted open times; a misaligned series is the contract's job, not ours."""
    ts = np.asarray(timestamps, dtype=np.int64)
    if len(ts) < 2:
        return []
    step = timeframe_ms(timeframe)
    diffs = np.diff(ts)
    at = np.flatnonzero(diffs > step)
    return [
        Gap(start=int(ts[i] + step), end=int(ts[i + 1] - step), missing=int(diffs[i] // step - 1)) for i in at.tolist()
    ]


def classify(
    gaps: Mapping[SeriesKey, list[Gap]], spans: Mapping[SeriesKey, tuple[int, int]]
) -> dict[SeriesKey, list[Gap]]:
    """Mark a gap exchange-wide when every other series of its exchange and timeframe that spans it misses it too.

    Args:
        gaps: Gaps per series, e.g. from ``find_gaps``.
        spans: (first, last) stored open time per series; a series that does not span a gap says nothing.
    """
    out: dict[SeriesKey, list[Gap]] = {}
    for key, own in gaps.items():
        peers = [
            other
            for other in spans
            if other != key and (other.exchange, other.timeframe) == (key.exchange, key.timeframe)
        ]
        marked = []
        for gap in own:
            witnesses = [p for p in peers if spans[p][0] < gap.start and spans[p][1] > gap.end]
            wide = bool(witnesses) and all(_covers(gaps.get(p, []), gap) for p in witnesses)
            marked.append(Gap(gap.start, gap.end, gap.missing, EXCHANGE_WIDE if wide else SERIES_ONLY))
        out[key] = marked
    return out


def _covers(gaps: list[Gap], gap: Gap) -> bool:
    """True when one of ``gaps`` contains the whole of ``gap``."""
    return any(g.start <= gap.start and g.end >= gap.end for g in gaps)
