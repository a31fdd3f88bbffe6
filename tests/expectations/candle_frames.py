"""A clean candle frame and a report's failures, shared by the candle-contract tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from candlecast.expectations.runner import ValidationReport
from candlecast.schema import timeframe_ms

HOUR_MS = timeframe_ms("1h")


def clean_frame(n: int = 200, seed: int = 7) -> pd.DataFrame:
    """A valid 1h random-walk frame: aligned, increasing ms timestamps and consistent OHLC."""
    rng = np.random.default_rng(seed)
    close = 20_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0.0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0.0, 0.01, n))
    start = 1_600_560_000_000  # 2020-09-20 00:00 UTC, on the hour
    timestamp = start + np.arange(n, dtype="int64") * HOUR_MS
    volume = rng.uniform(0.0, 50.0, n)
    return pd.DataFrame(
        {"timestamp": timestamp, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )


def failed(report: ValidationReport) -> set[tuple[str, str]]:
    return {(f["expectation"], f["columns"]) for f in report.failures}
