"""Time splits: one walk-forward engine shared by the sweep, the evaluation and promotion.

Splits are expressed as timestamp ranges of *sample times* (the last input candle of a window),
so every series and every model sees the same folds. Between a training range and the range
after it lies a purge gap of ``lookback + horizon`` candles: no training target overlaps a later
input window or target, so nothing from the evaluated period leaks into training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Range:
    start: int  # inclusive sample timestamp, ms
    end: int  # inclusive sample timestamp, ms

    def mask(self, timestamps: np.ndarray) -> np.ndarray:
        return (timestamps >= self.start) & (timestamps <= self.end)


@dataclass(frozen=True)
class Fold:
    train: Range
    val: Range


@dataclass(frozen=True)
class Plan:
    """Walk-forward folds over the development range, then an untouched test range."""

    folds: list[Fold]
    test: Range

    @property
    def development(self) -> Range:
        return Range(self.folds[0].train.start, self.folds[-1].val.end)


def plan_splits(
    timestamps: np.ndarray,
    step_ms: int,
    gap: int,
    test_fraction: float,
    val_fraction: float,
    n_folds: int,
) -> Plan:
    """Cut the common timeline into expanding-window folds and a final test range.

    Args:
        timestamps: sample timestamps of all series (any order, duplicates fine).
        step_ms: candle length.
        gap: purge gap in candles (lookback + horizon).
        test_fraction: share of the timeline for the final test range.
        val_fraction: share of the timeline for each fold's validation range.
        n_folds: number of folds; fold i validates on the i-th range before the test range.
    """
    first, last = int(np.min(timestamps)), int(np.max(timestamps))
    n = (last - first) // step_ms + 1
    n_test = int(n * test_fraction)
    n_val = int(n * val_fraction)
    n_train_min = n - n_test - n_folds * n_val - (n_folds + 1) * gap
    if n_test < 1 or n_val < 1 or n_train_min < max(n_val, 2 * gap):
        raise ValueError(
            f"{n} candles are too few for {n_folds} fold(s) of {val_fraction:.0%} validation, "
            f"{test_fraction:.0%} test and a {gap}-candle purge gap: fetch more history or lower the fractions"
        )

    def at(i: int) -> int:
        return first + i * step_ms

    test = Range(at(n - n_test), last)
    folds = []
    for i in range(n_folds):
        # fold i ends (n_folds - i) validation ranges (with gaps) before the test range
        val_end = n - n_test - gap - 1 - (n_folds - 1 - i) * (n_val + gap)
        val_start = val_end - n_val + 1
        folds.append(Fold(train=Range(first, at(val_start - gap - 1)), val=Range(at(val_start), at(val_end))))
    return Plan(folds=folds, test=test)
