"""The baselines a statistician tries first, behind the same interface and on the same folds as the LSTMs.

All forecast H cumulative log returns from a window's last close and fit on the fold's training
range only, then refit at the test start on every row before it (candlecast.forecasting.retrain).
The statistical ones (AutoARIMA, AutoETS, Prophet) fit on the last ``stat_window`` candles of the
range, then roll forward over each test window's own past without refitting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from candlecast.features.windows import SeriesArrays, WindowDataset, fit_scaler, make_loader
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.splits import Fold
from candlecast.schema import Range

_DAY_MS = 86_400_000


def season_length(step_ms: int) -> int:
    """One day of candles for intraday data (24 on 1h), else a week."""
    return _DAY_MS // step_ms if step_ms < _DAY_MS else 7


class Baseline(Forecaster):
    """What every baseline knows: the window, the horizon, the candle length and its fitting budget."""

    name = "baseline"

    def __init__(self, lookback: int, horizon: int, step_ms: int, stat_window: int = 2000):
        self.lookback, self.horizon, self.step_ms, self.stat_window = lookback, horizon, step_ms, stat_window
        self.season = season_length(step_ms)

    def fit(self, series: list[SeriesArrays], fold: Fold) -> None:
        """Most baselines learn nothing."""


class Naive(Baseline):
    """The random walk: tomorrow's price is today's, a zero return at every step."""

    name = "naive"

    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, None]:
        """Zero cumulative return at every step, no bounds."""
        return np.zeros((len(rows), self.horizon)), None


class Drift(Baseline):
    """The random walk with drift: the training range's mean one-candle return, accumulated."""

    name = "drift"

    def fit(self, series: list[SeriesArrays], fold: Fold) -> None:
        """Estimate the mean one-candle log return over the training range, skipping steps across gaps."""
        rets = []
        for s in series:
            usable = _contiguous_steps(s, self.step_ms) & fold.train.mask(s.timestamps)[1:]
            rets.append(np.diff(np.log(s.close))[usable])
        self.mu = float(np.mean(np.concatenate(rets)))

    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, None]:
        """The drift accumulated over 1..H steps, the same for every window."""
        return np.tile(self.mu * np.arange(1, self.horizon + 1), (len(rows), 1)), None


class SeasonalNaive(Baseline):
    """Each step repeats the price one season earlier (24 h on hourly candles), relative to the last close."""

    name = "snaive"

    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, None]:
        """The log change from one season before each step to the window's last close."""
        log_close = np.log(series.close)
        out = np.zeros((len(rows), self.horizon))
        for k in range(1, self.horizon + 1):
            back = k - self.season * int(np.ceil(k / self.season))  # <= 0: already observed at t
            want = series.timestamps[rows] + back * self.step_ms
            at = np.clip(np.searchsorted(series.timestamps, want), 0, len(series.timestamps) - 1)
            found = series.timestamps[at] == want
            # a missing past candle falls back to the random walk for that step
            out[:, k - 1] = np.where(found, log_close[at] - log_close[rows], 0.0)
        return out, None


class Ridge(Baseline):
    """A direct linear autoregression on the same scaled input windows the LSTMs see.

    The penalty is chosen on the validation range from a grid; the intercept is not penalised.
    """

    name = "ridge"
    penalties = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # times the number of training windows

    def fit(self, series: list[SeriesArrays], fold: Fold) -> None:
        """Solve ridge regressions from the training windows' Gram matrix; keep the penalty best on validation."""
        solve = self._solver(series, fold.train)
        vx, vy = self._design(series, [s.sample_rows(fold.val) for s in series])
        fits = [(penalty, solve(penalty)) for penalty in self.penalties]
        # without validation windows the smallest penalty wins (its "error" is the penalty itself)
        errors = [float(np.mean((vx @ coef - vy) ** 2)) if len(vx) else penalty for penalty, coef in fits]
        self.penalty, self.coef = fits[int(np.argmin(errors))]  # the first of equal errors, as a strict < did

    def refit(self, series: list[SeriesArrays], train: Range) -> None:
        """Solve again on every window of ``train`` with the penalty ``fit`` chose on validation."""
        self.coef = self._solver(series, train)(self.penalty)

    def _solver(self, series: list[SeriesArrays], train: Range) -> Callable[[float], np.ndarray]:
        """Fit the scaler on ``train`` and give the ridge solution for a penalty (the intercept unpenalised)."""
        self.scaler = fit_scaler(series, train)
        xtx, xty, n = self._gram(series, [s.sample_rows(train) for s in series])
        eye = np.eye(len(xtx))
        eye[-1, -1] = 0.0
        return lambda penalty: np.linalg.solve(xtx + penalty * n * eye, xty)

    def _batches(self, series: list[SeriesArrays], rows: list[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        ds = WindowDataset(series, rows, self.scaler, self.lookback)
        for x, y in make_loader(ds, 4096, shuffle=False):
            flat = x.reshape(len(x), -1).double().numpy()
            yield np.hstack([flat, np.ones((len(flat), 1))]), y.double().numpy()

    def _gram(self, series: list[SeriesArrays], rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
        xtx: np.ndarray | None = None
        xty: np.ndarray | None = None
        n = 0
        for x, y in self._batches(series, rows):
            xtx = x.T @ x if xtx is None else xtx + x.T @ x
            xty = x.T @ y if xty is None else xty + x.T @ y
            n += len(x)
        if xtx is None or xty is None:  # both or neither: set by the same batches
            raise ValueError("ridge: the training range holds no complete window")
        return xtx, xty, n

    def _design(self, series: list[SeriesArrays], rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        parts = list(self._batches(series, rows))
        if not parts:
            return np.empty((0, 1)), np.empty((0, self.horizon))
        return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])

    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, None]:
        """The linear map applied to the scaled windows, the target scale undone."""
        x, _ = self._design([series], [rows])
        if len(rows) == 0:
            return np.empty((0, self.horizon)), None
        return x @ self.coef * np.asarray(self.scaler.target_scale), None


class _StatsForecast(Baseline):
    """A statsforecast model on log closes: fit once per fold, then ``forward`` over each window's past.

    ``forward`` restarts from the fitted initial states, so each window's past is cut to begin at
    the same phase of the season as the training data did.
    """

    context: int | None = 480  # candles of each window's past to filter through; None: all since the fit's start

    def _make(self) -> Any:
        raise NotImplementedError

    def fit(self, series: list[SeriesArrays], fold: Fold) -> None:
        self.models, self.phase = {}, {}
        for s in series:  # one model per series: they need not share dynamics
            ts, y = _tail_segment(s, fold.train.end, self.stat_window, self.step_ms)
            if len(y) < 3 * self.season:
                raise ValueError(f"{self.name}: only {len(y)} contiguous training candles; need {3 * self.season}")
            self.models[s.name], self.phase[s.name] = self._make().fit(np.log(y)), int(ts[0])

    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, None]:
        out = np.zeros((len(rows), self.horizon))
        log_close = np.log(series.close)
        model, phase = self.models[series.name], self.phase[series.name]
        for i, t in enumerate(rows):
            origin = int(series.timestamps[t])
            length = self.context or (origin - phase) // self.step_ms + 1
            ts, y = _tail_segment(series, origin, length, self.step_ms)
            y = y[(-((ts[0] - phase) // self.step_ms)) % self.season :] if len(y) else y
            if len(y) >= 2 * self.season:  # else: too little clean past, fall back to the random walk
                out[i] = model.forward(y=np.log(y), h=self.horizon)["mean"] - log_close[t]
        return out, None


class AutoARIMA(_StatsForecast):
    """AutoARIMA with the season of the candle length (a day intraday, else a week)."""

    name = "arima"

    def _make(self) -> Any:
        from statsforecast.models import AutoARIMA as _AutoARIMA

        return _AutoARIMA(season_length=self.season)


class AutoETS(_StatsForecast):
    """AutoETS with the error and trend chosen by AICc and an additive daily season kept.

    Left to choose the season too ("ZZZ"), statsforecast dropped it even on a clean daily cycle
    (tests/unit/test_baselines.py): the baseline would then be a second random walk.
    """

    name = "ets"
    context = None  # its initial level is the training start's: filter from there (cheap for ETS)

    def _make(self) -> Any:
        from statsforecast.models import AutoETS as _AutoETS

        # statsforecast's ETS supports seasons up to 24 (hourly data); longer ones fit without a season
        return _AutoETS(season_length=self.season, model="ZZA" if self.season <= 24 else "ZZN")


class Prophet(Baseline):
    """Prophet's trend and daily/weekly seasonality on log closes, fitted per fold.

    Its forecast for a window is the change the fitted curve makes from the window's last candle
    to each step ahead (Prophet has no state to update from recent prices).
    """

    name = "prophet"

    def fit(self, series: list[SeriesArrays], fold: Fold) -> None:
        """Fit one Prophet per series on the last ``stat_window`` training candles (naive UTC times)."""
        import pandas as pd

        logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)  # "Importing plotly failed": not needed here
        from cmdstanpy.utils import get_logger
        from prophet import Prophet as _Prophet

        get_logger().setLevel(logging.WARNING)  # it installs its own INFO handler on first use

        self.models = {}
        for s in series:
            keep = s.timestamps <= fold.train.end
            ts, close = s.timestamps[keep][-self.stat_window :], s.close[keep][-self.stat_window :]
            model = _Prophet(
                daily_seasonality=self.step_ms < _DAY_MS,
                weekly_seasonality=True,
                yearly_seasonality=False,
                uncertainty_samples=0,
            )
            self.models[s.name] = model.fit(pd.DataFrame({"ds": _naive_utc(ts), "y": np.log(close)}))

    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, None]:
        """The fitted curve's change from each window's last candle to each step ahead."""
        import pandas as pd

        if len(rows) == 0:
            return np.empty((0, self.horizon)), None
        origin = series.timestamps[rows]
        times = origin[:, None] + np.arange(self.horizon + 1) * self.step_ms  # (N, H + 1)
        unique, inverse = np.unique(times, return_inverse=True)
        yhat = self.models[series.name].predict(pd.DataFrame({"ds": _naive_utc(unique)}))["yhat"].to_numpy()
        curve = yhat[inverse.reshape(times.shape)]
        return curve[:, 1:] - curve[:, :1], None


BASELINES: dict[str, type[Baseline]] = {
    cls.name: cls for cls in (Naive, Drift, SeasonalNaive, Ridge, AutoARIMA, AutoETS, Prophet)
}


def make_baseline(name: str, lookback: int, horizon: int, step_ms: int, stat_window: int = 2000) -> Baseline:
    """A fresh baseline by name; the error lists the known names."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}: choose from {sorted(BASELINES)}")
    return BASELINES[name](lookback, horizon, step_ms, stat_window)


def _contiguous_steps(s: SeriesArrays, step_ms: int) -> np.ndarray:
    return np.diff(s.timestamps) == step_ms


def _tail_segment(s: SeriesArrays, until: int, length: int, step_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps and closes of the last contiguous run of at most ``length`` candles ending by ``until``."""
    end = int(np.searchsorted(s.timestamps, until, side="right"))
    start = max(0, end - length)
    ts = s.timestamps[start:end]
    breaks = np.flatnonzero(np.diff(ts) != step_ms)
    if len(breaks):
        start += int(breaks[-1]) + 1
    return s.timestamps[start:end], s.close[start:end]


def _naive_utc(ms: np.ndarray) -> Any:
    import pandas as pd

    return pd.to_datetime(ms, unit="ms")  # Prophet wants tz-naive times; these are UTC
