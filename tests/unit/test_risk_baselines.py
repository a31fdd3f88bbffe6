"""Volatility baselines and the risk engine: hand-computed cases, training rows only, no look-ahead."""

import numpy as np
import pandas as pd
import pytest

from candlecast.config import FeatureConfig
from candlecast.features.compute import series_features
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.risk import VAR_LEVELS, realised_variance, run_risk_fold, variance_view
from candlecast.forecasting.risk_baselines import (
    EWMA,
    GARCH,
    HAR,
    HARJ,
    HARQ,
    HARRange,
    NaiveVol,
    RiskBaseline,
    make_risk_baseline,
)
from candlecast.forecasting.risk_metrics import qlike
from candlecast.forecasting.splits import walk_forward
from candlecast.forecasting.targets import Walk
from candlecast.forecasting.targets.volatility import VOLATILITY
from candlecast.forecasting.walkforward import backtest
from candlecast.registry.promotion import series_judged

HOUR = 3_600_000
START = 1_704_067_200_000
H = 6
FC = FeatureConfig(lookback=12, horizon=H, vol_window=12)


def garch_candles(n: int, seed: int = 0) -> pd.DataFrame:
    """GARCH(1,1) returns with t(5) shocks: volatility clusters, as on real markets."""
    rng = np.random.default_rng(seed)
    r, var = np.zeros(n), 1e-4
    for t in range(1, n):
        var = 2e-6 + 0.1 * r[t - 1] ** 2 + 0.88 * var
        r[t] = np.sqrt(var) * rng.standard_t(5) / np.sqrt(5 / 3)
    close = 100 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pd.DataFrame(
        {
            "timestamp": START + np.arange(n, dtype=np.int64) * HOUR,
            "open": open_,
            "high": np.maximum(open_, close) * 1.0005,
            "low": np.minimum(open_, close) * 0.9995,
            "close": close,
            "volume": 10.0 + np.arange(n) % 7,
        }
    )


def arrays(candles: pd.DataFrame) -> SeriesArrays:
    out = SeriesArrays.from_frame("s", series_features(candles, FC, "1h"), H)
    out.mark_windows(FC.lookback, HOUR)
    return out


def test_the_target_is_the_sum_of_the_next_h_squared_returns():
    s = arrays(garch_candles(300))
    r = np.diff(np.log(s.close))
    rv = realised_variance(s.targets)
    for t in (50, 120, 290 - H):
        assert rv[t] == pytest.approx(np.sum(r[t : t + H] ** 2))
    assert np.isnan(rv[-1])  # the last rows have no complete future
    assert variance_view(s).targets.shape == (len(s.close), 1)


def test_naive_and_ewma_by_hand():
    s = variance_view(arrays(garch_candles(400, seed=1)))
    r = np.diff(np.log(s.close))
    fold = walk_forward(START, START + 399 * HOUR, HOUR, 10, 1, 60, 60, 60)[0]
    rows = np.array([200, 300])
    naive = NaiveVol(H, HOUR).forecast(s, rows)[0][:, 0]
    assert naive[0] == pytest.approx(np.mean(r[200 - 24 : 200] ** 2) * H)  # at least a day of candles
    daily = NaiveVol(48, HOUR).forecast(s, rows)[0][:, 0]
    assert daily[0] == pytest.approx(np.mean(r[200 - 48 : 200] ** 2) * 48)  # the last h when h is longer
    ewma = EWMA(H, HOUR)
    ewma.fit([s], fold)
    train = r[: int(np.sum(s.timestamps <= fold.train.end)) - 1]
    v = np.var(train)
    for x in r[:200]:
        v = 0.94 * v + 0.06 * x * x
    assert ewma.forecast(s, np.array([200]))[0][0, 0] == pytest.approx(v * H, rel=1e-9)


def test_garch_closed_form_matches_arch_analytic_forecast():
    from arch import arch_model

    s = variance_view(arrays(garch_candles(2500, seed=2)))
    fold = walk_forward(START, START + 2499 * HOUR, HOUR, 10, 1, 300, 300, 300)[0]
    model = GARCH(H, HOUR)
    model.fit([s], fold)
    r = np.diff(np.log(s.close)) * 100
    fixed = arch_model(r, mean="Zero", vol="GARCH", p=1, q=1, dist="t")
    params = [model.omega, model.alpha, model.beta, 5.0]
    origin = 2000  # the forecast made at the close of candle 2000 (return index 1999)
    expected = fixed.fix(params).forecast(horizon=H, start=origin - 1, reindex=False).variance.iloc[0].sum()
    # arch starts its recursion from the sample variance of all returns; ours from the training returns:
    # after 2000 steps with persistence < 1 the start is forgotten
    ours = model.forecast(s, np.array([origin]))[0][0, 0] * 100**2
    assert ours == pytest.approx(expected, rel=1e-6)


def _shaken(candles: pd.DataFrame, rows: pd.Series, seed: int) -> pd.DataFrame:
    """The candles with the prices of ``rows`` moved by a random walk (their returns change; the rest keep theirs)."""
    out = candles.copy()
    out.loc[rows, ["open", "high", "low", "close"]] *= np.exp(
        np.cumsum(np.random.default_rng(seed).normal(0, 0.05, rows.sum()))
    )[:, None]
    return out


def _fitted_state(name: str, candles: pd.DataFrame, fold) -> dict:
    model = make_risk_baseline(name, H, HOUR)
    model.fit([variance_view(arrays(candles))], fold)  # the whole series: the fit could read any row
    return {k: v for k, v in vars(model).items() if isinstance(v, (float, np.ndarray))}


@pytest.mark.parametrize("name", ["garch", "gjr_garch", "har", "ewma", "har_range", "harq", "har_j"])
def test_fits_use_training_rows_only(name):
    """The fit gets every row; only what its training windows know (up to train.end + h candles) may move it.

    Rows after that cutoff change and the fitted state does not; a change before it does move the
    state, so the test could fail.
    """
    candles = garch_candles(3000, seed=3)
    fold = walk_forward(START, START + 2999 * HOUR, HOUR, 10, 1, 400, 400, 400)[0]
    cutoff = fold.train.end + H * HOUR  # the last close a training window's target reads
    base = _fitted_state(name, candles, fold)
    later = _fitted_state(name, _shaken(candles, candles["timestamp"] > cutoff, seed=0), fold)
    for key, value in base.items():
        np.testing.assert_allclose(later[key], value, err_msg=key)
    inside = (candles["timestamp"] > fold.train.end - 300 * HOUR) & (candles["timestamp"] <= cutoff)
    earlier = _fitted_state(name, _shaken(candles, inside, seed=1), fold)
    assert any(not np.allclose(earlier[key], value) for key, value in base.items())


class Peeking(RiskBaseline):
    """A planted leak: forecasts the variance from the next h returns."""

    name = "peeking"

    def forecast(self, series, rows):
        r = np.diff(np.log(series.close), append=np.nan)
        out = np.array([np.nansum(r[t : t + H] ** 2) for t in rows])
        return out[:, None], None


@pytest.mark.parametrize(
    "model",
    [NaiveVol(H, HOUR), EWMA(H, HOUR), GARCH(H, HOUR), HAR(H, HOUR), HARRange(H, HOUR), HARQ(H, HOUR), HARJ(H, HOUR)]
    + [Peeking(H, HOUR)],
)
def test_risk_forecasts_do_not_change_when_later_rows_are_removed(model):
    s = variance_view(arrays(garch_candles(3000, seed=4)))
    fold = walk_forward(START, START + 2999 * HOUR, HOUR, 10, 1, 400, 400, 400)[0]
    model.fit([s.until(fold.val.end)], fold)
    rows = s.sample_rows(fold.test)[[0, 99, 250]]
    full = model.forecast(s.inputs_only(), rows)[0][:, 0]
    alone = [model.forecast(s.until(int(s.timestamps[t])).inputs_only(), np.array([t]))[0][0, 0] for t in rows]
    if isinstance(model, Peeking):
        assert not np.allclose(alone, full)  # the test catches the planted leak
    else:
        np.testing.assert_allclose(alone, full, rtol=1e-9)


def test_on_clustered_volatility_garch_and_har_beat_the_naive_and_var_holds():
    s = arrays(garch_candles(9000, seed=5))
    folds = walk_forward(START, START + 8999 * HOUR, HOUR, 20, 2, 1500, 600, 800)
    family = ("har", "har_range", "harq", "har_j")
    factories = {n: (lambda n=n: make_risk_baseline(n, H, HOUR)) for n in ("naive_vol", "ewma", "garch", *family)}
    factories["model"] = factories["ewma"]  # stands in for a network: the gate's numbers need one
    result = backtest(VOLATILITY, factories, [s], folds, Walk(step_ms=HOUR, horizon=H, adaptive_rate=0.02))
    q = result.summary["qlike"]
    assert q["garch"] < q["naive_vol"] and all(q[n] < q["naive_vol"] for n in family)
    assert result.summary.loc["naive_vol", "dm_p_garch"] > 0.95  # naive is significantly worse than GARCH
    assert 0.02 <= result.summary.loc["garch", "var95_hit_rate"] <= 0.09
    # the gate reads the best configured baseline: with the HAR family configured, the best of them
    walk = Walk(step_ms=HOUR, horizon=H, references=("naive_vol", *family))
    best = min(family, key=lambda n: q[n])
    metrics = VOLATILITY.run_metrics(result, None, walk)
    assert metrics["qlike_ratio"] == pytest.approx(q["model"] / q[best])
    assert walk.references[int(metrics["best_baseline_index"])] == best
    result.summary.loc[walk.references[0], "qlike"] = np.nan  # a baseline that scored nothing is passed over
    assert VOLATILITY.run_metrics(result, None, walk)["qlike_ratio"] == pytest.approx(q["model"] / q[best])


def test_a_series_var_is_its_own_whatever_series_share_the_model():
    # The pooled model walks every coin at once; each coin's VaR must be what a model of that coin
    # alone gets: its own calibration quantile, its own tracker. EWMA forecasts each series from its
    # own rows, so any difference is the VaR's. (Pooled across coins, the calm series' quantile was
    # the wild one's and vice versa.)
    calm = arrays(garch_candles(3000, seed=6))
    wild = arrays(garch_candles(3000, seed=7))
    wild.targets = wild.targets * 3.0  # fatter h-step returns than its variance forecast says
    wild.name = "wild"
    fold = walk_forward(START, START + 2999 * HOUR, HOUR, 10, 1, 400, 400, 400)[0]
    both = run_risk_fold(EWMA(H, HOUR), [calm, wild], fold, 1, HOUR, adaptive_rate=0.02)
    for s in (calm, wild):
        alone = run_risk_fold(EWMA(H, HOUR), [s], fold, 1, HOUR, adaptive_rate=0.02)
        mine = both.subset(both.series == s.name)
        for level in VAR_LEVELS:
            np.testing.assert_allclose(mine.var[level], alone.var[level], rtol=1e-12)
    assert both.quantiles["var99"] == min(
        run_risk_fold(EWMA(H, HOUR), [s], fold, 1, HOUR, adaptive_rate=0.02).quantiles["var99"] for s in (calm, wild)
    )  # one quantile per level ships for every series: the widest


def test_a_many_coin_model_is_scored_coin_by_coin_against_each_coins_best_baseline():
    """What the gate reads for the pooled model: per coin, QLIKE over that coin's best baseline, and the champion's."""
    calm, wild = arrays(garch_candles(3000, seed=6)), arrays(garch_candles(3000, seed=8))
    wild.name = "wild"
    folds = walk_forward(START, START + 2999 * HOUR, HOUR, 10, 2, 400, 300, 300)
    factories = {n: (lambda n=n: make_risk_baseline(n, H, HOUR)) for n in ("naive_vol", "ewma", "har")}
    factories["model"], factories["champion"] = factories["ewma"], factories["naive_vol"]  # network stand-ins
    walk = Walk(step_ms=HOUR, horizon=H, references=("naive_vol", "ewma", "har"))
    result = backtest(VOLATILITY, factories, [calm, wild], folds, walk)
    metrics = VOLATILITY.run_metrics(result, "3", walk)
    for name in ("s", "wild"):
        mine = {
            m: result.pooled(m).subset(result.pooled(m).series == name) for m in ("model", "champion", *walk.references)
        }
        qlikes = {m: float(np.nanmean(qlike(f.realised, f.forecast))) for m, f in mine.items()}
        best = min(walk.references, key=qlikes.__getitem__)
        assert walk.references[int(metrics[f"series.{name}.best_baseline_index"])] == best
        assert metrics[f"series.{name}.qlike_ratio"] == pytest.approx(qlikes["model"] / qlikes[best])
        assert metrics[f"series.{name}.champion.qlike_ratio"] == pytest.approx(qlikes["champion"] / qlikes[best])
        assert 0 <= metrics[f"series.{name}.dm_pvalue"] <= 1 and 0 <= metrics[f"series.{name}.champion.dm_pvalue"] <= 1
    assert series_judged(metrics, VOLATILITY) == ["s", "wild"]
    one = VOLATILITY.run_metrics(backtest(VOLATILITY, factories, [calm], folds, walk), None, walk)
    assert not series_judged(one, VOLATILITY)  # one series: judged on its windows, as before


def _training_fit(name: str, candles: pd.DataFrame, fold) -> tuple[HAR, np.ndarray, np.ndarray]:
    """A HAR-family model fitted on one fold, with the regressors and targets of its training windows."""
    s = variance_view(arrays(candles))
    model = make_risk_baseline(name, H, HOUR)
    assert isinstance(model, HAR)
    model.fit([s], fold)
    rows = s.sample_rows(fold.train)
    x, y = model.regressors(s)[rows], s.targets[rows, 0]
    if model.in_logs:
        y = np.log(y)
    keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
    return model, x[keep], y[keep]


@pytest.mark.parametrize("name", ["har", "har_range", "harq", "har_j"])
def test_har_family_fits_are_statsmodels_ols_on_the_papers_regressors(name):
    import statsmodels.api as sm

    candles = garch_candles(3000, seed=6)
    fold = walk_forward(START, START + 2999 * HOUR, HOUR, 10, 1, 400, 400, 400)[0]
    model, x, y = _training_fit(name, candles, fold)
    np.testing.assert_allclose(model.coef, sm.OLS(y, x).fit().params, rtol=1e-8, atol=1e-10)
    # the regressors, written out from the candles (1h: a day is 24 candles, no candle missing)
    o, hi, lo, c = (candles[k].to_numpy() for k in ("open", "high", "low", "close"))
    r = np.diff(np.log(c), prepend=np.nan)
    gk = 0.5 * np.log(hi / lo) ** 2 - (2 * np.log(2) - 1) * np.log(c / o) ** 2
    t = 2500  # a candle with a month of history
    day, week, month = (np.sum(r[t - 24 * d + 1 : t + 1] ** 2) / d for d in (1, 7, 30))
    rq = 24 / 3 * np.sum(r[t - 23 : t + 1] ** 4)
    bv = np.pi / 2 * np.sum(np.abs(r[t - 23 : t + 1]) * np.abs(r[t - 24 : t]))
    expected = {
        "har": np.log([day, week, month]),
        "har_range": np.log([np.sum(gk[t - 24 * d + 1 : t + 1]) / d for d in (1, 7, 30)]),
        "harq": [day, day * np.sqrt(rq), week, month],
        "har_j": [day, week, month, max(day - bv, 0.0)],
    }[name]
    s = variance_view(arrays(candles))
    np.testing.assert_allclose(model.regressors(s)[t], [1.0, *expected], rtol=1e-10)


@pytest.mark.parametrize("name", ["harq", "har_j"])
def test_level_models_apply_the_insanity_filter(name):
    """A forecast outside the training targets' range becomes their mean (Bollerslev, Patton & Quaedvlieg 2016)."""
    candles = garch_candles(3000, seed=7)
    fold = walk_forward(START, START + 2999 * HOUR, HOUR, 10, 1, 400, 400, 400)[0]
    model, x, y = _training_fit(name, candles, fold)
    assert (model.low, model.high, model.mean) == pytest.approx((y.min(), y.max(), y.mean()))
    # a crash after the training range: the daily terms leave anything the training windows saw
    wild = candles.copy()
    crash = wild["timestamp"] > fold.test.start + 200 * HOUR  # half the test block calm, half wild
    wild.loc[crash, ["open", "high", "low", "close"]] *= np.exp(
        np.cumsum(np.where(np.arange(crash.sum()) % 2, 0.2, -0.2))
    )[:, None]
    s = variance_view(arrays(wild))
    rows = s.sample_rows(fold.test)
    fitted = model.regressors(s)[rows] @ model.coef
    out = model.forecast(s.inputs_only(), rows)[0][:, 0]
    outside = (fitted < y.min()) | (fitted > y.max())
    assert outside.sum() > 10 and (~outside).sum() > 10  # both branches are exercised
    np.testing.assert_allclose(out[outside], y.mean())
    np.testing.assert_allclose(out[~outside], fitted[~outside])
    assert (out > 0).all()
