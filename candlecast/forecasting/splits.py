"""Time splits: one walk-forward engine shared by the sweep, the evaluation and promotion.

Splits are ranges of *sample times* (the open time of a window's last input candle), so every series
and every model sees the same folds. Each fold has four blocks, each a purge gap apart:

    [train] gap [early-stop] gap [calibrate] gap [test]

The model fits on train and may early-stop (or pick a penalty) on the early-stop block; its intervals
are calibrated on the calibration block, whose residuals never steered training or model selection;
it is scored on test. The purge gap (at least the horizon; by default lookback + horizon) means no
target of one block overlaps a later block's inputs or targets. Folds are a pure function of the
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
    """The four blocks of one walk-forward step: fit, early-stop, calibrate, score."""

    train: Range
    val: Range  # early stopping and model selection (e.g. ridge's penalty)
    cal: Range  # conformal calibration only
    test: Range


@dataclass(frozen=True)
class Plan:
    """The sweep's folds inside the development range, then the evaluation's folds over the test range.

    Every sweep block ends before the first evaluation fold's calibration block: hyperparameters are
    chosen without seeing the windows that calibrate or judge the chosen model.
    """

    folds: list[Fold]
    test_folds: list[Fold]

    @property
    def test(self) -> Range:
        """The whole evaluation span: first test fold's start to the last one's end."""
        return Range(self.test_folds[0].test.start, self.test_folds[-1].test.end)


def walk_forward(
    first: int,
    last: int,
    step_ms: int,
    gap: int,
    n_folds: int,
    n_test: int,
    n_val: int,
    n_cal: int,
    window: Literal["expanding", "sliding"] = "expanding",
    n_train: int | None = None,
) -> list[Fold]:
    """The engine: ``n_folds`` consecutive test blocks of ``n_test`` candles ending at ``last``.

    Fold k is [train][gap][val n_val][gap][cal n_cal][gap][test k]; train starts at ``first``
    (expanding) or spans ``n_train`` candles (sliding). All sizes are in candles.
    """
    n = (last - first) // step_ms + 1

    def at(i: int) -> int:
        return first + i * step_ms

    folds = []
    for k in range(n_folds):
        test_end = n - 1 - (n_folds - 1 - k) * n_test
        test_start = test_end - n_test + 1
        cal_end = test_start - gap - 1
        cal_start = cal_end - n_cal + 1
        val_end = cal_start - gap - 1
        val_start = val_end - n_val + 1
        train_end = val_start - gap - 1
        train_start = 0 if window == "expanding" else max(0, train_end - (n_train or 0) + 1)
        if min(n_test, n_val, n_cal) < 1 or train_end - train_start + 1 < max(n_val, 2 * gap, 2):
            raise ValueError(
                f"{n} candles are too few for {n_folds} fold(s) of {n_test} test, {n_cal} calibration and "
                f"{n_val} early-stopping candles with a {gap}-candle purge gap: fetch more history "
                "(data.history_days), use fewer folds or lower the split fractions"
            )
        folds.append(
            Fold(
                train=Range(at(train_start), at(train_end)),
                val=Range(at(val_start), at(val_end)),
                cal=Range(at(cal_start), at(cal_end)),
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
    cal_fraction: float,
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
        val_fraction: share of the timeline for each fold's early-stopping block, and for each sweep
            fold's test block.
        cal_fraction: share of the timeline for each fold's calibration block.
        n_folds: sweep folds, inside the range before the first evaluation calibration block.
        test_folds: evaluation folds tiling the final ``test_fraction``.
        window: expanding (train from the start) or sliding (train on ``train_fraction``).
        train_fraction: training length of a sliding window, as a share of the timeline.
    """
    evaluation = evaluation_folds(
        timestamps, step_ms, gap, test_fraction, val_fraction, cal_fraction, test_folds, window, train_fraction
    )
    first, last = int(np.min(timestamps)), int(np.max(timestamps))
    n = (last - first) // step_ms + 1
    n_val, n_cal = int(n * val_fraction), int(n * cal_fraction)
    n_train = int(n * train_fraction) if train_fraction else None
    dev_last = evaluation[0].cal.start - (gap + 1) * step_ms
    sweep = walk_forward(first, dev_last, step_ms, gap, n_folds, n_val, n_val, n_cal, window, n_train)
    return Plan(folds=sweep, test_folds=evaluation)


def evaluation_folds(
    timestamps: np.ndarray,
    step_ms: int,
    gap: int,
    test_fraction: float,
    val_fraction: float,
    cal_fraction: float,
    test_folds: int,
    window: Literal["expanding", "sliding"] = "expanding",
    train_fraction: float | None = None,
) -> list[Fold]:
    """The folds every model is judged on: ``test_folds`` blocks tiling the last ``test_fraction``."""
    first, last = int(np.min(timestamps)), int(np.max(timestamps))
    n = (last - first) // step_ms + 1
    n_train = int(n * train_fraction) if train_fraction else None
    n_test = int(n * test_fraction) // test_folds
    return walk_forward(
        first, last, step_ms, gap, test_folds, n_test, int(n * val_fraction), int(n * cal_fraction), window, n_train
    )


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
        cal_fraction=sp.cal_fraction,
        n_folds=sp.n_folds,
        test_folds=sp.test_folds,
        window=sp.window,
        train_fraction=sp.train_fraction,
    )


def evaluation_folds_for(timestamps: np.ndarray, cfg: RunConfig) -> list[Fold]:
    """The evaluation folds of a config on one timeline (what `candlecast backtest` scores)."""
    sp = cfg.split
    return evaluation_folds(
        timestamps,
        timeframe_ms(cfg.data.timeframe),
        cfg.gap,
        sp.test_fraction,
        sp.val_fraction,
        sp.cal_fraction,
        sp.test_folds,
        sp.window,
        sp.train_fraction,
    )


class _Windows(Protocol):
    timestamps: np.ndarray

    def sample_rows(self, within: Range, need_targets: bool = True) -> np.ndarray: ...


def origins(series: _Windows, within: Range, stride: int, step_ms: int) -> np.ndarray:
    """A fold's forecast origins: rows ending a complete window inside ``within``, one every ``stride`` candles."""
    rows = series.sample_rows(within)
    return rows[((series.timestamps[rows] - within.start) // step_ms) % stride == 0]
