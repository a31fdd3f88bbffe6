"""The volatility models a risk desk uses first, behind the Forecaster interface, on the same folds.

Each forecasts the realised variance of the next h candles (the sum of squared log returns) from a
window's last candle, fitting on the fold's training rows only. GARCH(1,1) and GJR-GARCH with
Student-t innovations come from the ``arch`` package (fitted per fold); their h-step forecasts use
the fitted parameters in closed form over every later candle, which is what ``arch``'s analytic
forecast computes (tests/unit/test_risk_baselines.py checks it) at a fraction of the cost. HAR-RV is
Corsi's (2009) regression on the last day's, week's and month's realised variance, in logs, refitted
per fold.
"""

from __future__ import annotations

import warnings

import numpy as np

from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.splits import Fold

_DAY_MS = 86_400_000
_PCT = 100.0  # arch fits returns in percent: its optimiser is tuned for that scale


def log_returns(s: SeriesArrays, step_ms: int) -> np.ndarray:
    """One-candle log returns per row; NaN where the previous candle is missing (never bridged)."""
    r = np.full(len(s.close), np.nan)
    r[1:] = np.diff(np.log(s.close))
    r[1:][np.diff(s.timestamps) != step_ms] = np.nan
    return r


class RiskBaseline(Forecaster):
    """What every volatility baseline knows: the horizon and the candle length."""

    name = "risk-baseline"

    def __init__(self, horizon: int, step_ms: int):
        self.horizon, self.step_ms = horizon, step_ms

    def fit(self, series: list[SeriesArrays], fold: Fold) -> None:
        """Most learn nothing."""

    def _rows(self, s: SeriesArrays, rows: np.ndarray, per_row: np.ndarray) -> tuple[np.ndarray, None]:
        return per_row[rows][:, None], None


class NaiveVol(RiskBaseline):
    """The random walk of volatility: the next h candles are as volatile as the last ones.

    "The last ones" are the last h candles, but at least a day's: one squared return is no
    variance estimate (a flat candle would forecast zero risk, and QLIKE rightly punishes that
    without bound), so at h = 1 the naive forecast is the last day's mean squared return.
    """

    name = "naive_vol"

    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, None]:
        """The trailing mean squared return of the last max(h, one day) candles, times h, as (N, 1)."""
        sq = log_returns(series, self.step_ms) ** 2
        window = max(self.horizon, _DAY_MS // self.step_ms)
        # the mean over the candles the window has, times h: a missing candle does not read as calm
        mean = _trailing_nanmean(sq, window)
        return self._rows(series, rows, mean * self.horizon)


class EWMA(RiskBaseline):
    """RiskMetrics: an exponentially weighted variance (lambda 0.94), flat over the horizon."""

    name = "ewma"
    decay = 0.94

    def fit(self, series: list[SeriesArrays], fold: Fold) -> None:
        """Start the recursion at the training range's variance, so the first test windows are not cold."""
        train = np.concatenate([log_returns(s, self.step_ms)[fold.train.mask(s.timestamps)] for s in series])
        self.start = float(np.nanvar(train))

    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, None]:
        """The next candle's variance known at each origin, times h (EWMA has no mean reversion), as (N, 1)."""
        r = log_returns(series, self.step_ms)
        var = np.empty(len(r))
        v = self.start
        for i, x in enumerate(r.tolist()):
            if x == x:  # a missing candle leaves the estimate where it was
                v = self.decay * v + (1 - self.decay) * x * x
            var[i] = v  # known at the close of candle i: the next candle's variance
        return self._rows(series, rows, var * self.horizon)


class GARCH(RiskBaseline):
    """GARCH(1,1) with Student-t innovations, fitted on the training rows of each fold."""

    name = "garch"
    asymmetric = False

    def fit(self, series: list[SeriesArrays], fold: Fold) -> None:
        """Fit GARCH-t by maximum likelihood on the fold's training returns, pooled over series, in percent.

        Percent returns keep arch's optimiser well scaled; ``forecast`` converts back.
        """
        from arch import arch_model

        parts = [log_returns(s, self.step_ms)[fold.train.mask(s.timestamps)] for s in series]
        train = np.concatenate([p[np.isfinite(p)] for p in parts]) * _PCT
        model = arch_model(train, mean="Zero", vol="GARCH", p=1, o=int(self.asymmetric), q=1, dist="t")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # arch's convergence chatter; a bad fit shows in the scores
            fitted = model.fit(disp="off", options={"maxiter": 200})
        p = fitted.params
        self.omega, self.alpha, self.beta = p["omega"], p["alpha[1]"], p["beta[1]"]
        self.gamma = p["gamma[1]"] if self.asymmetric else 0.0
        self.start = float(np.var(train))

    def one_step(self, r_pct: np.ndarray) -> np.ndarray:
        """sigma^2 of the next candle, known at each candle's close (percent squared)."""
        out = np.empty(len(r_pct))
        var, a, b, g, w = self.start, self.alpha, self.beta, self.gamma, self.omega
        for i, x in enumerate(r_pct.tolist()):
            if x == x:
                var = w + (a + g * (x < 0)) * x * x + b * var
            out[i] = var
        return out

    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, None]:
        """The closed-form sum of the next h one-step variances (mean-reverting when persistence < 1), as (N, 1)."""
        nxt = self.one_step(log_returns(series, self.step_ms) * _PCT)
        phi = self.alpha + self.beta + self.gamma / 2  # persistence (symmetric innovations)
        h = self.horizon
        if phi < 1:
            level = self.omega / (1 - phi)
            total = h * level + (nxt - level) * (1 - phi**h) / (1 - phi)
        else:  # integrated: each step adds omega
            total = h * nxt + self.omega * h * (h - 1) / 2
        return self._rows(series, rows, total / _PCT**2)


class GJRGARCH(GARCH):
    """GJR-GARCH(1,1,1): bad news raises volatility more than good news."""

    name = "gjr_garch"
    asymmetric = True


class HAR(RiskBaseline):
    """HAR-RV (Corsi 2009) in logs: the next h candles' variance from the last day's, week's and month's."""

    name = "har"

    def _regressors(self, s: SeriesArrays) -> np.ndarray:
        sq = log_returns(s, self.step_ms) ** 2
        day = max(1, _DAY_MS // self.step_ms)
        cols = [_trailing_nanmean(sq, day * n) * day for n in (1, 7, 30)]  # each as one day's variance
        with np.errstate(divide="ignore"):
            return np.column_stack([np.ones(len(sq)), *(np.log(c) for c in cols)])

    def fit(self, series: list[SeriesArrays], fold: Fold) -> None:
        """Regress each training window's log realised variance on the log daily, weekly and monthly ones."""
        xs, ys = [], []
        for s in series:
            rows = s.sample_rows(fold.train)
            with np.errstate(divide="ignore"):  # windows that never moved: log 0, dropped just below
                x, y = self._regressors(s)[rows], np.log(s.targets[rows, 0])
            keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
            xs.append(x[keep])
            ys.append(y[keep])
        x, y = np.concatenate(xs), np.concatenate(ys)
        if len(y) < 10:
            raise ValueError("HAR: fewer than 10 training windows with a month of history: fetch more candles")
        self.coef = np.linalg.lstsq(x, y, rcond=None)[0]
        self.smearing = float(np.mean(np.exp(y - x @ self.coef)))  # Duan: exp of a log forecast is biased low

    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, None]:
        """The regression's forecast, Duan-smeared back from logs, as (N, 1); NaN without a month of history."""
        x = self._regressors(series)[rows]
        out = np.exp(x @ self.coef) * self.smearing
        return np.where(np.isfinite(out), out, np.nan)[:, None], None


def _trailing_nanmean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the finite values among the last ``window`` (NaN until half of them exist)."""
    finite = np.isfinite(x)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, x, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    count = ccount[idx] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (csum[idx] - csum[lo]) / count
    return np.where((count >= max(1, window // 2)) & (idx >= window), mean, np.nan)


RISK_BASELINES: dict[str, type[RiskBaseline]] = {cls.name: cls for cls in (NaiveVol, EWMA, GARCH, GJRGARCH, HAR)}


def make_risk_baseline(name: str, horizon: int, step_ms: int) -> RiskBaseline:
    """A fresh volatility baseline by name; the error lists the known names."""
    if name not in RISK_BASELINES:
        raise ValueError(f"unknown volatility baseline {name!r}: choose from {sorted(RISK_BASELINES)}")
    return RISK_BASELINES[name](horizon, step_ms)
