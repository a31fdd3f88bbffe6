"""The volatility models a risk desk uses first, behind the Forecaster interface, on the same folds.

Each forecasts the realised variance of the next h candles (the sum of squared log returns) from a
window's last candle, fitting on the fold's training rows only. GARCH(1,1) and GJR-GARCH with
Student-t innovations come from the ``arch`` package (fitted per fold); their h-step forecasts use
the fitted parameters in closed form over every later candle, which is what ``arch``'s analytic
forecast computes (tests/unit/test_risk_baselines.py checks it) at a fraction of the cost. HAR-RV is
Corsi's (2009) regression on the last day's, week's and month's realised variance, in logs, refitted
per fold; beside it the HAR family: HAR on Garman-Klass range-based variance, HARQ (quarticity) and
HAR-J (jumps), each fitted per fold on training rows only.
"""

from __future__ import annotations

import warnings

import numpy as np

from candlecast.features.realized import HAR_DAYS, Realized, garman_klass_logs, grid_positions, window_mean
from candlecast.features.realized import log_returns as realized_log_returns
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.splits import Fold

_DAY_MS = 86_400_000
_PCT = 100.0  # arch fits returns in percent: its optimiser is tuned for that scale


def log_returns(s: SeriesArrays, step_ms: int) -> np.ndarray:
    """One-candle log returns per row; NaN where the previous candle is missing (never bridged)."""
    return realized_log_returns(s.timestamps, s.close, step_ms)


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
        mean = window_mean(sq, grid_positions(series.timestamps, self.step_ms), window)
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
    """HAR-RV (Corsi 2009) in logs: the next h candles' variance from the last day's, week's and month's.

    The HAR family shares this fit: ordinary least squares of each training window's realised variance
    on a constant and the subclass's terms (candlecast.features.realized, windows counted in time). In
    logs, the forecast is Duan-smeared back (exp of a log forecast is biased low); in levels, as the
    HARQ and HAR-J papers fit, a forecast outside the range of the training targets is replaced by
    their mean (the "insanity filter" of Bollerslev, Patton & Quaedvlieg 2016, after Swanson & White
    1997), which also keeps a level forecast positive.
    """

    name = "har"
    in_logs = True

    def terms(self, s: SeriesArrays) -> list[np.ndarray]:
        """Realised variance over the last day, week and month, each as one day's."""
        rm = Realized(s.timestamps, s.close, self.step_ms)
        return [rm.rv(days) for days in HAR_DAYS.values()]

    def regressors(self, s: SeriesArrays) -> np.ndarray:
        """A constant and the terms (their logs for a log model), one row per candle; NaN or -inf without history."""
        terms = self.terms(s)
        if self.in_logs:
            with np.errstate(divide="ignore", invalid="ignore"):  # a window that never moved: log 0, never fitted
                terms = [np.log(t) for t in terms]
        return np.column_stack([np.ones(len(s.close)), *terms])

    def fit(self, series: list[SeriesArrays], fold: Fold) -> None:
        """OLS of the training windows' (log) realised variance on the regressors, training rows only."""
        xs, ys = [], []
        for s in series:
            rows = s.sample_rows(fold.train)
            x, y = self.regressors(s)[rows], s.targets[rows, 0]
            if self.in_logs:
                with np.errstate(divide="ignore"):
                    y = np.log(y)
            keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
            xs.append(x[keep])
            ys.append(y[keep])
        x, y = np.concatenate(xs), np.concatenate(ys)
        if len(y) < 10:
            raise ValueError(f"{self.name}: fewer than 10 training windows with a month of history: fetch more candles")
        self.coef = np.linalg.lstsq(x, y, rcond=None)[0]
        if self.in_logs:
            self.smearing = float(np.mean(np.exp(y - x @ self.coef)))
        else:
            self.low, self.high, self.mean = float(y.min()), float(y.max()), float(y.mean())

    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, None]:
        """The regression's forecast back in variance, as (N, 1); NaN without a month of history."""
        with np.errstate(invalid="ignore"):
            fitted = self.regressors(series)[rows] @ self.coef
        if self.in_logs:
            out = np.exp(fitted) * self.smearing
        else:
            out = np.where((fitted < self.low) | (fitted > self.high), self.mean, fitted)  # the insanity filter
        return np.where(np.isfinite(fitted), out, np.nan)[:, None], None


class HARRange(HAR):
    """HAR in logs on range-based variance: Garman-Klass over the last day, week and month.

    Garman & Klass use the high and low as well as the close: several times the efficiency of squared
    returns per candle. They come from the ``range`` and ``body`` features (ln H/L and ln C/O), which
    every feature frame holds; with ``features.denoise: hampel`` those are the filtered values.
    """

    name = "har_range"

    def terms(self, s: SeriesArrays) -> list[np.ndarray]:
        """Garman-Klass variance over the last day, week and month, each as one day's."""
        missing = [c for c in ("range", "body") if c not in s.columns]
        if missing:
            raise ValueError(f"har_range needs the {missing} features of every candle frame: rebuild the features")
        gk = garman_klass_logs(s.features[:, s.columns.index("range")], s.features[:, s.columns.index("body")])
        rm = Realized(s.timestamps, s.close, self.step_ms)
        return [rm.over(gk, days) for days in HAR_DAYS.values()]


class HARQ(HAR):
    """HARQ (Bollerslev, Patton & Quaedvlieg 2016), in levels: the daily term's weight falls as its noise grows.

    RV_next = b0 + (b1 + b1Q sqrt(RQ_d)) RV_d + b2 RV_w + b3 RV_m, with RQ_d the last day's realized
    quarticity: a daily RV measured with more error (high quarticity) is trusted less.
    """

    name = "harq"
    in_logs = False

    def terms(self, s: SeriesArrays) -> list[np.ndarray]:
        """RV_d, RV_d sqrt(RQ_d), RV_w, RV_m."""
        rm = Realized(s.timestamps, s.close, self.step_ms)
        day, week, month = (rm.rv(days) for days in HAR_DAYS.values())
        return [day, day * np.sqrt(rm.quarticity(1)), week, month]


class HARJ(HAR):
    """HAR-J (Andersen, Bollerslev & Diebold 2007), in levels: HAR-RV plus the last day's jump, max(RV - BV, 0)."""

    name = "har_j"
    in_logs = False

    def terms(self, s: SeriesArrays) -> list[np.ndarray]:
        """RV_d, RV_w, RV_m and the daily jump proxy."""
        rm = Realized(s.timestamps, s.close, self.step_ms)
        return [*(rm.rv(days) for days in HAR_DAYS.values()), rm.jump(1)]


RISK_BASELINES: dict[str, type[RiskBaseline]] = {
    cls.name: cls for cls in (NaiveVol, EWMA, GARCH, GJRGARCH, HAR, HARRange, HARQ, HARJ)
}


def make_risk_baseline(name: str, horizon: int, step_ms: int) -> RiskBaseline:
    """A fresh volatility baseline by name; the error lists the known names."""
    if name not in RISK_BASELINES:
        raise ValueError(f"unknown volatility baseline {name!r}: choose from {sorted(RISK_BASELINES)}")
    return RISK_BASELINES[name](horizon, step_ms)
