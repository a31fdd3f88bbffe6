import numpy as np
import pytest

from candlecast.splits import plan_splits

HOUR = 3_600_000


def _timeline(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * HOUR


@pytest.mark.parametrize("n_folds", [1, 3])
def test_folds_are_ordered_and_purged(n_folds):
    gap = 30
    plan = plan_splits(_timeline(5000), HOUR, gap, test_fraction=0.15, val_fraction=0.1, n_folds=n_folds)
    assert len(plan.folds) == n_folds
    for fold in plan.folds:
        assert fold.train.start < fold.train.end < fold.val.start <= fold.val.end < plan.test.start
        # strictly more than `gap` candles between the last training sample and the first validation one
        assert (fold.val.start - fold.train.end) // HOUR == gap + 1
    assert (plan.test.start - plan.folds[-1].val.end) // HOUR == gap + 1
    assert plan.test.end == 4999 * HOUR
    # expanding windows: every fold trains on more than the one before, validates later
    for a, b in zip(plan.folds, plan.folds[1:], strict=False):
        assert a.train.start == b.train.start and a.train.end < b.train.end and a.val.end < b.val.start


def test_deterministic_and_independent_of_order():
    ts = _timeline(3000)
    shuffled = np.random.default_rng(0).permutation(np.concatenate([ts, ts]))
    assert plan_splits(ts, HOUR, 10, 0.2, 0.2, 2) == plan_splits(shuffled, HOUR, 10, 0.2, 0.2, 2)


def test_too_little_history_is_a_clear_error():
    with pytest.raises(ValueError, match="too few"):
        plan_splits(_timeline(100), HOUR, 48, 0.15, 0.15, 1)
