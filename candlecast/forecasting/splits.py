"""Time splits: one walk-forward engine shared by the sweep, the evaluation and promotion.

Splits are expressed as timestamp ranges of *sample times* (the last input candle of a window),
so every series and every model sees the same folds. Each fold is train, gap, validation, gap,
test: the model fits on train, early-stops and calibrates its intervals on validation, and is
scored on test. The purge gap (at least the horizon; by default lookback + horizon) means no
training target overlaps a later window's inputs or targets. Folds are a pure function of the
timeline and the config: deterministic, and identical for every model compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from candlecast.config import RunConfig
from candlecast.schema import Range, timeframe_ms


@dataclass(frozen=True)
class Fold:
    train: Range
    val: Range
    test: Range


@dataclass(frozen=True)
class Plan:
    """The sweep's folds inside the development range, then the evaluation's folds over the test range.

    No sweep fold's test range reaches the first evaluation test range: hyperparameters are chosen
    without ever seeing the data they are finally judged on.
    """

    folds: list[Fold]
    test_folds: list[Fold]

    @property
    def test(self) -> Range:
        return Range(self.test_folds[0].test.start, self.test_folds[-1].test.end)


def walk_forward(
    first: int,
    last: int,
    step_ms: int,
    gap: int,
    n_folds: int,
    n_test: int,
    n_val: int,
    window: Literal["expanding", "sliding"] = "expanding",
    n_train: int | None = None,
) -> list[Fold]:
    """The engine: ``n_folds`` consecutive test blocks of ``n_test`` candles ending at ``last``.

    Fold k is [train][gap][val n_val][gap][test k]; train starts at ``first`` (expanding) or spans
    ``n_train`` candles (sliding). All sizes are in candles.
    """
    n = (last - first) // step_ms + 1

    def at(i: int) -> int:
        return first + i * step_ms

    folds = []
    for k in range(n_folds):
        test_end = n - 1 - (n_folds - 1 - k) * n_test
        test_start = test_end - n_test + 1
        val_end = test_start - gap - 1
        val_start = val_end - n_val + 1
        train_end = val_start - gap - 1
        train_start = 0 if window == "expanding" else max(0, train_end - (n_train or 0) + 1)
        if n_test < 1 or n_val < 1 or train_end - train_start + 1 < max(n_val, 2 * gap, 2):
            raise ValueError(
                f"{n} candles are too few for {n_folds} fold(s) of {n_test} test and {n_val} validation candles "
                f"with a {gap}-candle purge gap: fetch more history, use fewer folds or lower the fractions"
            )
        folds.append(
            Fold(
                train=Range(at(train_start), at(train_end)),
                val=Range(at(val_start), at(val_end)),
                test=Range(at(test_start), at(test_end)),
            )
        )
    return folds


def plan_splits(
    timestamps: np.ndarray,
    step_ms: int,
    gap: int,
    test_fraction: float,
    val_fraction: float,
    n_folds: int,
    test_folds: int = 1,
    window: Literal["expanding", "sliding"] = "expanding",
    train_fraction: float | None = None,
) -> Plan:
    """Cut the common timeline into sweep folds and evaluation folds.

    Args:
        timestamps: sample timestamps of all series (any order, duplicates fine).
        step_ms: candle length.
        gap: purge gap in candles (at least the horizon).
        test_fraction: share of the timeline the evaluation's test blocks cover, at its end.
        val_fraction: share of the timeline for each fold's validation block, and for each sweep
            fold's test block.
        n_folds: sweep folds, inside the range before the first evaluation test block.
        test_folds: evaluation folds tiling the final ``test_fraction``.
        window: expanding (train from the start) or sliding (train on ``train_fraction``).
    """
    evaluation = evaluation_folds(
        timestamps, step_ms, gap, test_fraction, val_fraction, test_folds, window, train_fraction
    )
    first, last = int(np.min(timestamps)), int(np.max(timestamps))
    n = (last - first) // step_ms + 1
    n_val = int(n * val_fraction)
    n_train = int(n * train_fraction) if train_fraction else None
    dev_last = evaluation[0].test.start - (gap + 1) * step_ms
    sweep = walk_forward(first, dev_last, step_ms, gap, n_folds, n_val, n_val, window, n_train)
    return Plan(folds=sweep, test_folds=evaluation)


def evaluation_folds(
    timestamps: np.ndarray,
    step_ms: int,
    gap: int,
    test_fraction: float,
    val_fraction: float,
    test_folds: int,
    window: Literal["expanding", "sliding"] = "expanding",
    train_fraction: float | None = None,
) -> list[Fold]:
    """The folds every model is judged on: ``test_folds`` blocks tiling the last ``test_fraction``."""
    first, last = int(np.min(timestamps)), int(np.max(timestamps))
    n = (last - first) // step_ms + 1
    n_train = int(n * train_fraction) if train_fraction else None
    n_test = int(n * test_fraction) // test_folds
    return walk_forward(first, last, step_ms, gap, test_folds, n_test, int(n * val_fraction), window, n_train)


class _Timeline(Protocol):
    timestamps: np.ndarray


def make_plan(series: Sequence[_Timeline], cfg: RunConfig) -> Plan:
    """The folds of a run: a pure function of the series' timeline and the config."""
    sp = cfg.split
    return plan_splits(
        np.concatenate([s.timestamps for s in series]),
        timeframe_ms(cfg.data.timeframe),
        gap=cfg.gap,
        test_fraction=sp.test_fraction,
        val_fraction=sp.val_fraction,
        n_folds=sp.n_folds,
        test_folds=sp.test_folds,
        window=sp.window,
        train_fraction=sp.train_fraction,
    )
