"""The backtest tests the procedure that ships: each fold's model is refit at its test start, as production refits."""

import math
from dataclasses import replace
from functools import partial

import numpy as np
import pytest

from candlecast.config import TrainConfig
from candlecast.features.windows import fit_scaler
from candlecast.forecasting.baselines import Ridge
from candlecast.forecasting.neural import NeuralForecaster
from candlecast.forecasting.retrain import Refit, known_at
from candlecast.forecasting.targets.returns import RETURNS
from candlecast.forecasting.walkforward import backtest
from candlecast.schema import Range
from tests.unit.test_backtest import ADAPTIVE, FC, HOUR, WALK, ar1_candles, arrays, baseline, folds_of


class RecordedLSTM(NeuralForecaster):
    """A real tiny LSTM that notes what each refit received: its range, the windows it fitted, its epochs."""

    def __init__(self) -> None:
        super().__init__(
            "lstm", {"hidden_size": 8}, FC.lookback, FC.horizon, TrainConfig(max_epochs=2, threads=1), [0.1, 0.9]
        )
        self.refits: list[tuple[Range, Range, int, int]] = []

    def refit(self, series, train, epochs=None):
        assert self.result is not None
        chosen = self.result.best_epoch  # what the fold chose on its early-stopping block
        super().refit(series, train, epochs)
        self.refits.append((train, self.result.windows, self.result.best_epoch, chosen))


def _kept(kept: list, cls: type):
    """A fresh model per fold, kept so the test can read what it was given."""
    kept.append(cls())
    return kept[-1]


class CountingRidge(Ridge):
    """The real ridge baseline, counting its refits."""

    def __init__(self) -> None:
        super().__init__(FC.lookback, FC.horizon, HOUR)
        self.refits = 0

    def refit(self, series, train):
        self.refits += 1
        super().refit(series, train)


def test_each_refit_saw_every_row_before_its_start_and_none_after():
    s = arrays(ar1_candles(1400))
    fold = folds_of(s, n=1, n_test=200, n_val=300, n_cal=200)[0]
    models: list[RecordedLSTM] = []
    factory = partial(_kept, models, RecordedLSTM)
    backtest(RETURNS, {"lstm": factory}, [s], [fold], replace(WALK, refit=Refit("cutoff", every=80)))
    refits = models[0].refits
    assert len(refits) == math.ceil(200 / 80)  # the test block is 200 contiguous candles
    first_window = int(s.timestamps[s.sample_rows(Range(0, fold.test.start))[0]])
    for k, (train, windows, epochs, chosen) in enumerate(refits):
        start = fold.test.start + k * 80 * HOUR
        assert train == Range(int(s.timestamps[0]), start)
        # the last window whose every target has closed at the refit's start, as at a data cutoff
        assert windows == Range(first_window, start - FC.horizon * HOUR)
        assert epochs == chosen >= 1
    # the scaler saw no target closing after the last refit's start
    last = refits[-1][0]
    scaler = models[0].result.scaler
    expected = fit_scaler([known_at(s, last.end, HOUR)], last)
    np.testing.assert_allclose(scaler.target_scale, expected.target_scale)
    assert not np.allclose(fit_scaler([s], last).target_scale, expected.target_scale)


def test_refit_every_n_candles_refits_ceil_test_over_n_times():
    s = arrays(ar1_candles(2500))
    folds = folds_of(s, n=2, n_test=500)
    counts = {}
    for every in (None, 100, 120, 500):
        fitted: list[CountingRidge] = []
        factory = partial(_kept, fitted, CountingRidge)
        backtest(RETURNS, {"ridge": factory}, [s], folds, replace(WALK, refit=Refit("cutoff", every=every)))
        counts[every] = [m.refits for m in fitted]
    assert counts == {None: [1, 1], 100: [5, 5], 120: [5, 5], 500: [1, 1]}


@pytest.mark.parametrize("refit", ["stale", "cutoff"])
def test_intervals_come_from_the_calibration_block_not_the_test_block(refit):
    """Volatility triples inside the test block: the static interval, set on calibration, undercovers there."""
    candles = ar1_candles(4000, phi=0.0, seed=2)
    r = np.diff(np.log(candles["close"].to_numpy()), prepend=np.log(100.0))
    r[3000:] *= 3.0
    candles["close"] = 100 * np.exp(np.cumsum(r))
    s = arrays(candles)
    fold = folds_of(s, n=1, n_test=1200, n_val=600, n_cal=600)[0]
    assert fold.cal.end < s.timestamps[3000] <= fold.test.start + 200 * HOUR
    walk = replace(ADAPTIVE, adaptive_rate=0.0, refit=Refit(refit))
    result = backtest(RETURNS, {"ridge": baseline("ridge")}, [s], [fold], walk)
    f = result.forecasts["ridge"][0]
    # the offsets are the split-conformal residual quantiles of the model fitted before the calibration block
    stale = baseline("ridge")()
    stale.fit([s.until(fold.val.end)], fold)
    rows = s.sample_rows(fold.cal)
    point, _ = stale.forecast(s.inputs_only(), rows)
    resid = s.targets[rows] - point
    n = len(rows)
    np.testing.assert_allclose(f.calibration.upper, np.quantile(resid, np.ceil((n + 1) * 0.9) / n, axis=0))
    assert result.summary.loc["ridge", "coverage_static"] < 0.6
