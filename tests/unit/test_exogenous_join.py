"""The NumPy as-of join of exogenous values equals pandas' merge_asof (the implementation it replaced)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from candlecast.config import ExogenousConfig
from candlecast.features.exogenous import join_exogenous

HOUR = 3_600_000


def _merge_asof(timestamps: pd.Series, frame: pd.DataFrame, source: ExogenousConfig) -> pd.DataFrame:
    values = [c for c in frame.columns if c != "timestamp"]
    known = frame.assign(known_at=frame["timestamp"] + source.delay_ms).drop(columns="timestamp")
    rows = pd.DataFrame({"known_at": timestamps.to_numpy("int64") + HOUR})
    joined = pd.merge_asof(rows, known.sort_values("known_at"), on="known_at", direction="backward")
    return joined[values].astype(np.float64).rename(columns={c: f"exo_fear_greed_{c}" for c in values})


def test_the_join_equals_merge_asof_on_unsorted_gappy_and_missing_values():
    rng = np.random.default_rng(0)
    for case in range(40):
        n = int(rng.integers(1, 40))
        stamps = np.sort(rng.choice(np.arange(400) * HOUR, n, replace=False))
        frame = pd.DataFrame({"timestamp": stamps, "a": rng.normal(size=n), "b": rng.integers(0, 100, n)})
        frame.loc[frame.index[:: 1 + case % 4], "a"] = np.nan  # a missing value is carried, not skipped
        frame = frame.sample(frac=1, random_state=case)  # any order
        candles = pd.Series(np.sort(rng.integers(-50, 450, 120)) * HOUR)  # before, inside and after the file
        source = ExogenousConfig(path="x/fear-greed.csv", delay_ms=int(rng.integers(0, 3)) * HOUR)
        expected = _merge_asof(candles, frame, source)
        pd.testing.assert_frame_equal(join_exogenous(candles, HOUR, frame, source), expected, check_exact=True)
