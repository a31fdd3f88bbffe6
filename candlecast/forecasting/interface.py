"""The forecaster interface every model shares: fit on a fold, forecast windows, calibrate intervals.

Naive, statistical and neural models all implement ``Forecaster``, so the walk-forward
engine (candlecast.forecasting.walkforward) scores any of them on the same folds and windows: the sweep, the
evaluation and the promotion gate all re-score through it. Forecasts are H cumulative log
returns from the close of a window's last candle; intervals are conformal: calibrated on the
fold's calibration block (candlecast.forecasting.calibration), never on windows that steered the fit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.splits import Fold
from candlecast.schema import Range


class Forecaster(ABC):
    """A model that fits on one fold and forecasts the windows ending at given rows."""

    name: str

    @abstractmethod
    def fit(self, series: list[SeriesArrays], fold: Fold) -> None:
        """Fit on ``fold.train`` only; ``fold.val`` may serve early stopping or model selection.

        Never read ``fold.cal`` or ``fold.test``: they calibrate and judge the fitted model.
        """

    def refit(self, series: list[SeriesArrays], train: Range) -> None:
        """Fit again on every window of ``train`` with what ``fit`` chose on its early-stopping block.

        Production's refit to a cutoff, which the backtest repeats at each test start
        (candlecast.forecasting.retrain). A model that chooses nothing on that block simply fits on
        ``train`` with no early-stopping block; one that does (epochs, a penalty) keeps its choice.
        """
        none = Range(train.end + 1, train.end)  # no block after the training range
        self.fit(series, Fold(train=train, val=none, cal=none, test=none))

    @abstractmethod
    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Point forecasts (N, H) and, if the model has them, raw quantile bounds (N, H, 2)."""


def quantile_levels(interval: float) -> list[float]:
    """The two quantiles bounding a central interval, e.g. 0.8 -> [0.1, 0.9]."""
    return [round((1 - interval) / 2, 10), round((1 + interval) / 2, 10)]
