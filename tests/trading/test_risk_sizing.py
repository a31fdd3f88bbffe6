"""The risk model's volatility reaches the sizing: planted forecasts, their timing, and the sizing comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from trading_helpers import HOUR, forecast_frame

from candlecast.trading.backtest import target_table
from candlecast.trading.config import TradingConfig
from candlecast.trading.policy import YEAR_MS, one_day_var, per_symbol_cap, target_exposures
from candlecast.trading.risk_source import with_risk_volatility

RISK_H = 24


def _risk(pair, variance: float = 1e-3) -> pd.DataFrame:
    """A risk forecast at every candle of every symbol (cutoff = the candle's open), one variance for all."""
    parts = [
        pd.DataFrame({"symbol": s, "cutoff": c["timestamp"].to_numpy("int64"), "horizon": RISK_H, "variance": variance})
        for s, c in pair.items()
    ]
    return pd.concat(parts, ignore_index=True)


def _long(pair, horizon=4):
    return forecast_frame(pair, {s: np.full(len(c), 0.01) for s, c in pair.items()}, horizon=horizon)


def test_a_planted_risk_forecast_sets_the_position_as_vol_target_says(pair):
    frame, risk = _long(pair), _risk(pair)
    row = 30
    planted = risk.index[(risk["symbol"] == frame["symbol"][row]) & (risk["cutoff"] == frame["cutoff"][row])]
    risk.loc[planted, "variance"] = 4.0e-3
    sized, missing = with_risk_volatility(frame, risk, HOUR)
    assert missing == 0
    policy = TradingConfig.parse({"policy": {"name": "vol_target", "target_vol": 0.3, "max_position": 5.0}}).policy
    exposure = target_exposures(sized, policy, n_symbols=2)
    sigma = np.sqrt(4.0e-3 * 4 / RISK_H)  # the 24-candle variance, over the 4-candle holding period
    annual = sigma * np.sqrt(YEAR_MS / (4 * HOUR))
    assert exposure[row] == pytest.approx(min(per_symbol_cap(policy, 2), 0.3 / (2 * annual)), rel=1e-12)
    assert exposure[row] < exposure[row - 1] == pytest.approx(2 * exposure[row])  # a quarter of the variance
    var = one_day_var(sized, exposure)  # the VaR reads the same numbers
    assert var[row] == pytest.approx(exposure[row] * 1.6448536 * sigma * np.sqrt(24 / 4), rel=1e-6)
    plain = target_exposures(frame, policy, n_symbols=2)  # without the risk model: the interval's sigma
    assert not np.allclose(plain, exposure)


def test_sizing_uses_only_risk_forecasts_made_at_or_before_the_bar_it_sizes(pair):
    frame, risk = _long(pair), _risk(pair)
    sized, _ = with_risk_volatility(frame, risk.sample(frac=0.5, random_state=1), HOUR)  # gaps: older ones used
    assert (sized["risk_cutoff"].dropna() <= sized.loc[sized["risk_cutoff"].notna(), "cutoff"]).all()
    cfg = TradingConfig.parse({"policy": {"name": "vol_target", "max_position": 5.0}})
    before = target_table(with_risk_volatility(frame, risk, HOUR)[0], cfg, HOUR, 2)
    changed_at = int(frame["cutoff"].iloc[200])
    later = risk.assign(variance=np.where(risk["cutoff"] >= changed_at, 9e-3, risk["variance"]))
    after = target_table(with_risk_volatility(frame, later, HOUR)[0], cfg, HOUR, 2)
    moved = after["ts"][~np.isclose(after["target"], before["target"])]
    assert len(moved) and moved.min() == changed_at + HOUR  # first usable at the changed candle's close, not before


def test_a_stale_risk_forecast_falls_back_to_the_interval_and_is_counted(pair):
    frame = _long(pair)
    risk = _risk(pair).groupby("symbol").head(60)  # forecasts stop at candle 60; they live 24 candles
    sized, missing = with_risk_volatility(frame, risk, HOUR)
    live = sized["risk_cutoff"].notna()
    assert missing == int((~live).sum()) > 0
    assert (sized.loc[live, "cutoff"] - sized.loc[live, "risk_cutoff"] < RISK_H * HOUR).all()
    assert np.allclose(sized.loc[~live, "volatility"], 0.02 / 1.2815516, rtol=1e-6)  # the 80% interval's sigma


def test_a_risk_forecast_changed_after_a_bar_changes_nothing_at_or_before_it_in_the_engine(pair):
    """Through NautilusTrader: equity and positions up to the changed forecast's bar are identical."""
    from candlecast.trading.backtest import trade_backtest
    from candlecast.trading.engine import Market
    from candlecast.trading.sizing import sizing_frames

    candles = {s: c.iloc[:400].reset_index(drop=True) for s, c in pair.items()}
    market = Market("1h", candles)
    risk = _risk(candles).pipe(lambda r: r[r["cutoff"] >= r["cutoff"].min() + 100 * HOUR])
    risk = risk.assign(variance=1e-3 * (1 + 0.5 * np.sin(np.arange(len(risk)) / 7.0)))
    changed_at = int(risk["cutoff"].min() + 200 * HOUR)
    later = risk.assign(variance=np.where(risk["cutoff"] >= changed_at, 5e-3, risk["variance"]))
    cfg = TradingConfig.parse({"policy": {"name": "vol_target", "target_vol": 0.1, "no_trade_band": 0.0}, "hold": 4})
    runs = []
    for rows in (risk, later):
        frames = sizing_frames({"model": rows}, market.candles, "1h", 4, HOUR)
        runs.append(trade_backtest(market, {"model": frames["model"]}, cfg, buy_and_hold=False).runs["model"].equity)
    first, second = runs
    upto = first.index <= changed_at + HOUR - 1  # every bar closing before the changed forecast is usable
    pd.testing.assert_frame_equal(first[upto], second[upto])
    assert not np.allclose(first["equity"][~upto], second["equity"][~upto])  # it does move what comes after
