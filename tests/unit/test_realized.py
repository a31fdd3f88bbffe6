"""Realized measures against their papers' formulas, written out by hand on made-up candles, and their gaps."""

import math

import numpy as np
import pandas as pd
import pytest

from candlecast.config import FeatureConfig
from candlecast.features.compute import compute_features, warmup_rows
from candlecast.features.realized import (
    MEASURES,
    Realized,
    garman_klass,
    parkinson,
    realized_features,
    rogers_satchell,
    yang_zhang,
)

STEP = 4 * 3_600_000  # 4h candles: a day is 6 of them, a week 42, a month 180
DAY = 6
START = 1_704_067_200_000


def made_candles(n: int, seed: int = 0, drop: tuple[int, ...] = ()) -> pd.DataFrame:
    """Random-walk candles with opening jumps and highs and lows beyond open and close; ``drop`` removes candles."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * np.exp(rng.exponential(0.004, n))
    low = np.minimum(open_, close) * np.exp(-rng.exponential(0.004, n))
    frame = pd.DataFrame(
        {"timestamp": START + np.arange(n) * STEP, "open": open_, "high": high, "low": low, "close": close}
    )
    return frame.drop(index=list(drop)).reset_index(drop=True).assign(volume=1.0)


def realized(c: pd.DataFrame) -> Realized:
    prices = [c[k].to_numpy() for k in ("open", "high", "low", "close")]
    return Realized(c["timestamp"].to_numpy(), prices[3], STEP, *prices[:3])


def test_one_candle_by_the_papers():
    o, h, lo, c = 100.0, 110.0, 95.0, 105.0
    one = [np.array([x]) for x in (o, h, lo, c)]
    assert parkinson(one[1], one[2])[0] == pytest.approx(math.log(h / lo) ** 2 / (4 * math.log(2)), rel=1e-12)
    gk = 0.5 * math.log(h / lo) ** 2 - (2 * math.log(2) - 1) * math.log(c / o) ** 2
    assert garman_klass(*one)[0] == pytest.approx(gk, rel=1e-12)
    rs = math.log(h / c) * math.log(h / o) + math.log(lo / c) * math.log(lo / o)
    assert rogers_satchell(*one)[0] == pytest.approx(rs, rel=1e-12)


def _by_hand(c: pd.DataFrame, t: int, n: int) -> dict[str, float]:
    """Every measure over the n candles ending at row t of gapless candles, as the papers write them."""
    o, h, lo, cl = (c[k].to_numpy() for k in ("open", "high", "low", "close"))
    window = range(t - n + 1, t + 1)
    r = [math.log(cl[i] / cl[i - 1]) for i in window]
    rv = sum(x * x for x in r)
    bv = math.pi / 2 * sum(abs(math.log(cl[i] / cl[i - 1])) * abs(math.log(cl[i - 1] / cl[i - 2])) for i in window)
    opening = [math.log(o[i] / cl[i - 1]) for i in window]
    body = [math.log(cl[i] / o[i]) for i in window]
    rs = [
        math.log(h[i] / cl[i]) * math.log(h[i] / o[i]) + math.log(lo[i] / cl[i]) * math.log(lo[i] / o[i])
        for i in window
    ]
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    yz = np.var(opening, ddof=1) + k * np.var(body, ddof=1) + (1 - k) * sum(rs) / n
    per_day = DAY / n  # a window's sums scaled to one day
    return {
        "rv": rv * per_day,
        "up": sum(x * x for x in r if x > 0) * per_day,
        "down": sum(x * x for x in r if x < 0) * per_day,
        "bipower": bv * per_day,
        "jump": max(rv - bv, 0.0) * per_day,
        "quarticity": DAY / 3 * sum(x**4 for x in r) * per_day,  # the mean of the window's daily (M/3) sum r^4
        "yang_zhang": yz * DAY,
        "parkinson": sum(math.log(h[i] / lo[i]) ** 2 for i in window) / (4 * math.log(2)) * per_day,
    }


@pytest.mark.parametrize("days", [1, 7])
def test_window_aggregates_follow_the_formulas(days):
    c = made_candles(400, seed=1)
    rm = realized(c)
    n = DAY * days
    for t in (n + 2, 250, 399):
        want = _by_hand(c, t, n)
        got = {
            "rv": rm.rv(days),
            "up": rm.up(days),
            "down": rm.down(days),
            "bipower": rm.bipower(days),
            "jump": rm.jump(days),
            "quarticity": rm.quarticity(days),
            "yang_zhang": rm.range_based("yang_zhang", days),
            "parkinson": rm.range_based("parkinson", days),
        }
        for name, value in want.items():
            assert got[name][t] == pytest.approx(value, rel=1e-10), (name, t)
    # the semivariances split the realized variance
    np.testing.assert_allclose(rm.up(days) + rm.down(days), rm.rv(days), rtol=1e-12)


def test_a_missing_candle_never_makes_neighbours_adjacent():
    full = made_candles(200, seed=2)
    gap = made_candles(200, seed=2, drop=(100,))  # the same market, one 4h candle lost
    rm, t = realized(gap), 104  # row 104 of the gapped frame is candle 105, whose day holds the hole
    r = np.log(full["close"].to_numpy())
    r = np.diff(r, prepend=np.nan)
    assert np.isnan(rm.r[100])  # candle 101's return would span the hole
    day_slots = range(100, 106)  # the day ending at candle 105, in time: candle 100 is missing
    returns = [r[i] for i in day_slots if i not in (100, 101)]
    assert rm.rv(1)[t] == pytest.approx(np.mean(np.square(returns)) * DAY, rel=1e-12)
    pairs = [abs(r[i]) * abs(r[i - 1]) for i in day_slots if i not in (100, 101, 102)]
    assert rm.bipower(1)[t] == pytest.approx(np.pi / 2 * np.mean(pairs) * DAY, rel=1e-12)
    # the opening jump of the candle after the hole is not measured against two candles back
    o, cl = full["open"].to_numpy(), full["close"].to_numpy()
    opening = [math.log(o[i] / cl[i - 1]) for i in day_slots if i not in (100, 101)]
    body = [math.log(cl[i] / o[i]) for i in day_slots if i != 100]
    yz = yang_zhang(*(gap[k].to_numpy() for k in ("timestamp", "open", "high", "low", "close")), STEP, DAY)
    rs = rogers_satchell(
        *(full[k].to_numpy()[[i for i in day_slots if i != 100]] for k in ("open", "high", "low", "close"))
    )
    k = 0.34 / (1.34 + 6 / 4)  # n = 5 candles present
    assert yz[t] == pytest.approx(np.var(opening, ddof=1) + k * np.var(body, ddof=1) + (1 - k) * rs.mean(), rel=1e-10)
    # a window with fewer than half its candles present is no estimate
    sparse = made_candles(200, seed=2, drop=(100, 101, 102, 103))
    assert np.isnan(realized(sparse).rv(1)[100])  # candle 104: of its day, only candle 99 has a return


def test_off_grid_or_unsorted_candles_are_refused():
    c = made_candles(50)
    c.loc[10, "timestamp"] += 60_000
    with pytest.raises(ValueError, match="grid"):
        realized(c)


def test_features_select_measures_and_need_a_month_of_warm_up():
    c = made_candles(400, seed=3)
    cfg = FeatureConfig(realized=["yang_zhang", "semivariance"])
    frame = compute_features(c, cfg, "4h")
    assert [col for col in frame if col.startswith("rm_")] == [
        f"rm_{m}_{w}" for m in ("yang_zhang", "up", "down") for w in "dwm"
    ]
    assert warmup_rows(cfg, "4h") == 30 * DAY + 1
    live = frame.iloc[warmup_rows(cfg, "4h") :].filter(like="rm_")
    assert live.notna().all().all() and frame.filter(like="rm_").iloc[: 30 * DAY - 1]["rm_yang_zhang_m"].isna().all()
    np.testing.assert_allclose(frame["rm_up_w"] ** 2 + frame["rm_down_w"] ** 2, realized(c).rv(7), rtol=1e-12)
    # serving computes features from the last warm-up + lookback candles: the same values as from all of them
    tail = compute_features(c.iloc[-(warmup_rows(cfg, "4h") + 20) :], cfg, "4h")
    pd.testing.assert_frame_equal(tail.iloc[-20:].reset_index(drop=True), frame.iloc[-20:].reset_index(drop=True))
    with pytest.raises(ValueError, match="unknown realized measures"):
        realized_features(c, ["vix"], STEP)
    assert len(MEASURES) == 8
