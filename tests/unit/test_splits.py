"""The walk-forward engine: ordered, purged, deterministic, and the same folds for every caller."""

import numpy as np
import pytest

from candlecast.config import RunConfig
from candlecast.forecasting.splits import plan_splits, walk_forward

HOUR = 3_600_000


def _timeline(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * HOUR


def _candles_between(a: int, b: int) -> int:
    """Candles strictly between sample times a < b."""
    return (b - a) // HOUR - 1


@pytest.mark.parametrize("n_folds", [1, 3])
def test_folds_are_ordered_and_purged(n_folds):
    gap = 30
    folds = walk_forward(0, 4999 * HOUR, HOUR, gap, n_folds, n_test=300, n_val=400, n_cal=200)
    assert len(folds) == n_folds
    for fold in folds:
        blocks = [fold.train, fold.val, fold.cal, fold.test]
        for block in blocks:
            assert block.start <= block.end
        for before, after in zip(blocks, blocks[1:], strict=False):  # four blocks, each a purge gap apart
            assert _candles_between(before.end, after.start) == gap
        assert (fold.test.end - fold.test.start) // HOUR + 1 == 300
        assert (fold.cal.end - fold.cal.start) // HOUR + 1 == 200
        assert (fold.val.end - fold.val.start) // HOUR + 1 == 400
    assert folds[-1].test.end == 4999 * HOUR
    # test blocks tile the end of the timeline; expanding windows grow
    for a, b in zip(folds, folds[1:], strict=False):
        assert b.test.start == a.test.end + HOUR
        assert a.train.start == b.train.start == 0 and a.train.end < b.train.end


def test_sliding_windows_keep_their_length():
    folds = walk_forward(0, 4999 * HOUR, HOUR, 30, 3, n_test=300, n_val=400, n_cal=200, window="sliding", n_train=2000)
    for fold in folds:
        assert (fold.train.end - fold.train.start) // HOUR + 1 == 2000
    assert folds[0].train.start < folds[1].train.start < folds[2].train.start


def test_plan_keeps_the_sweep_away_from_the_calibration_and_test_blocks():
    """No window that chose hyperparameters ever calibrates an interval or judges the chosen model."""
    plan = plan_splits(
        _timeline(8000), HOUR, 30, test_fraction=0.2, val_fraction=0.1, cal_fraction=0.05, n_folds=2, test_folds=3
    )
    assert len(plan.folds) == 2 and len(plan.test_folds) == 3
    assert plan.test.end == 7999 * HOUR
    first_cal = plan.test_folds[0].cal.start
    for fold in plan.folds:
        assert _candles_between(fold.test.end, first_cal) >= 30
    assert plan.test_folds[0].test.start == plan.test.start


def test_deterministic_and_independent_of_order():
    ts = _timeline(3000)
    shuffled = np.random.default_rng(0).permutation(np.concatenate([ts, ts]))
    assert plan_splits(ts, HOUR, 10, 0.2, 0.1, 0.05, 2) == plan_splits(shuffled, HOUR, 10, 0.2, 0.1, 0.05, 2)


def test_too_little_history_is_a_clear_error():
    with pytest.raises(ValueError, match="too few"):
        plan_splits(_timeline(100), HOUR, 48, 0.15, 0.15, 0.1, 1)


def test_gap_shorter_than_the_horizon_is_refused():
    with pytest.raises(ValueError, match="horizon"):
        RunConfig.model_validate({"features": {"horizon": 24}, "split": {"gap": 12}})
    assert RunConfig.model_validate({"features": {"lookback": 48, "horizon": 24}}).gap == 72


def test_sliding_needs_a_length():
    with pytest.raises(ValueError, match="train_fraction"):
        RunConfig.model_validate({"split": {"window": "sliding"}})
