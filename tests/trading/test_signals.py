"""Decisions and the portfolio view from a forecast frame: P(up), action, target, VaR, weights, storage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from trading_helpers import forecast_frame

from candlecast.trading.allocation import risk_contributions
from candlecast.trading.config import PolicyConfig, TradingConfig
from candlecast.trading.portfolio import (
    forecast_risk_covariance,
    inverse_vol_weights,
    mean_variance_weights,
    portfolio_view,
)
from candlecast.trading.signals import DecisionStore, decide, policy_id


def _latest(pair, values: dict[str, float], widths: dict[str, float] | None = None) -> pd.DataFrame:
    """One forecast per symbol, made on the latest candle."""
    parts = []
    for symbol, candles in pair.items():
        frame = forecast_frame({symbol: candles}, first=len(candles) - 1, last_gap=0, horizon=24)
        width = (widths or {}).get(symbol, 0.03)
        parts.append(frame.assign(forecast=values[symbol], lower=values[symbol] - width, upper=values[symbol] + width))
    return pd.concat(parts, ignore_index=True)


def test_decisions_read_the_forecast_through_the_policy(pair):
    frame = _latest(pair, {"BTC/USDT": 0.01, "ETH/USDT": -0.02})
    cfg = TradingConfig.parse({"policy": {"name": "sign", "no_trade_band": 0.1}})
    out = decide(frame, pair, cfg, "1h").set_index("symbol")
    assert out.loc["BTC/USDT", "action"] == "buy" and out.loc["BTC/USDT", "target"] == 0.5
    assert out.loc["ETH/USDT", "action"] == "sell" and out.loc["ETH/USDT", "target"] == -0.5
    assert out.loc["BTC/USDT", "prob_up"] > 0.5 > out.loc["ETH/USDT", "prob_up"]
    close = pair["BTC/USDT"]["close"].iloc[-1]
    assert out.loc["BTC/USDT", "forecast_price"] == pytest.approx(close * np.exp(0.01))
    assert out.loc["BTC/USDT", "lower_price"] < close < out.loc["BTC/USDT", "upper_price"]
    assert out.loc["ETH/USDT", "var_1d_95"] > out.loc["BTC/USDT", "var_1d_95"] * 0.99  # same size, same width
    assert out.loc["BTC/USDT", "var_1d_95_value"] == pytest.approx(out.loc["BTC/USDT", "var_1d_95"] * 100_000)


def test_the_band_holds_a_position_that_barely_changed(pair):
    frame = _latest(pair, {"BTC/USDT": 0.01, "ETH/USDT": 0.01})
    cfg = TradingConfig.parse({"policy": {"name": "vol_target", "no_trade_band": 0.2}})
    fresh = decide(frame, pair, cfg, "1h").set_index("symbol")
    again = decide(frame, pair, cfg, "1h", previous={"BTC/USDT": fresh.loc["BTC/USDT", "target"] + 0.05})
    again = again.set_index("symbol")
    assert again.loc["BTC/USDT", "action"] == "hold"
    assert again.loc["BTC/USDT", "target"] == pytest.approx(fresh.loc["BTC/USDT", "target"] + 0.05)


def test_a_stale_forecast_never_becomes_todays_action(pair):
    frame = _latest(pair, {"BTC/USDT": 0.01, "ETH/USDT": 0.01})
    newer = {**pair, "BTC/USDT": pd.concat([pair["BTC/USDT"], _next_candle(pair["BTC/USDT"])], ignore_index=True)}
    with pytest.raises(ValueError, match="older than the latest candle for.*BTC/USDT"):
        decide(frame, newer, TradingConfig(), "1h")


def _next_candle(candles: pd.DataFrame) -> pd.DataFrame:
    last = candles.iloc[-1:].copy()
    last["timestamp"] += 3_600_000
    return last


def test_decision_store_upserts_and_answers_the_previous_target(pair, tmp_path):
    cfg = TradingConfig.parse({"policy": {"name": "sign"}})
    frame = _latest(pair, {"BTC/USDT": 0.01, "ETH/USDT": -0.01})
    store = DecisionStore(tmp_path / "signals")
    decisions = decide(frame, pair, cfg, "1h")
    store.write(decisions)
    store.write(decisions)  # a rerun replaces its own file
    ids = policy_id(cfg)
    assert sorted(store.read(ids)["symbol"]) == ["BTC/USDT", "ETH/USDT"]
    cutoff = int(decisions["cutoff"].iloc[0])
    assert store.previous_targets(["BTC/USDT"], {"BTC/USDT": cutoff + 1}, ids) == {"BTC/USDT": 0.5}
    assert store.previous_targets(["BTC/USDT"], {"BTC/USDT": cutoff}, ids) == {}  # only earlier cutoffs
    assert store.previous_targets(["BTC/USDT"], {"BTC/USDT": cutoff + 1}, "other-policy") == {}
    later = decisions.assign(cutoff=decisions["cutoff"] + 3_600_000, target=-decisions["target"])
    store.write(later)
    found = store.previous_targets(["BTC/USDT", "ETH/USDT"], dict.fromkeys(pair, cutoff + 7_200_000), ids)
    assert found == {"BTC/USDT": -0.5, "ETH/USDT": 0.5}  # the newest earlier decision wins


def test_inverse_vol_weights_give_each_symbol_the_same_risk(pair):
    frame = _latest(pair, {"BTC/USDT": 0.01, "ETH/USDT": -0.01}, widths={"BTC/USDT": 0.02, "ETH/USDT": 0.04})
    weights = inverse_vol_weights(frame, PolicyConfig(max_leverage=1.0))
    assert weights["BTC/USDT"] == pytest.approx(2 / 3) and weights["ETH/USDT"] == pytest.approx(-1 / 3)
    long_only = inverse_vol_weights(frame, PolicyConfig(allow_short=False))
    assert long_only["ETH/USDT"] == 0


def test_mean_variance_follows_the_forecasts_within_the_limits(pair):
    cov = forecast_risk_covariance(_latest(pair, {"BTC/USDT": 0.0, "ETH/USDT": 0.0}), pair, window=720)
    assert np.all(np.linalg.eigvalsh(cov.to_numpy()) > 0)
    policy = PolicyConfig(max_leverage=1.0, max_position=0.8)
    none = mean_variance_weights(_latest(pair, {"BTC/USDT": 0.0, "ETH/USDT": 0.0}), cov, policy)
    assert none.abs().max() < 1e-6  # no edge, no position
    strong = mean_variance_weights(_latest(pair, {"BTC/USDT": 0.5, "ETH/USDT": -0.5}), cov, policy, 0.1)
    assert strong["BTC/USDT"] > 0 > strong["ETH/USDT"]
    assert strong.abs().sum() <= 1.0 + 1e-6 and strong.abs().max() <= 0.8 + 1e-6


def test_portfolio_view_reports_risk_with_the_covariance(pair):
    frame = _latest(pair, {"BTC/USDT": 0.02, "ETH/USDT": 0.01})
    weights, summary = portfolio_view(frame, pair, PolicyConfig())
    assert list(weights.columns) == ["inverse_vol", "mean_variance", "min_variance", "risk_parity"]
    assert set(summary.index) == set(weights.columns)
    inv = summary.loc["inverse_vol"]
    assert inv["gross"] == pytest.approx(1.0) and inv["volatility_annual"] > 0 and inv["var_1d_95"] > 0
    assert summary.loc[["min_variance", "risk_parity"], "net"].to_numpy() == pytest.approx([1.0, 1.0])


def test_the_views_covariance_takes_the_risk_forecast_and_moves_the_weights(pair):
    """A planted volatility (as the risk champion's would arrive) is the covariance's diagonal and shifts weight."""
    frame = _latest(pair, {"BTC/USDT": 0.01, "ETH/USDT": 0.01}).assign(volatility=[0.02, 0.02])
    cov = forecast_risk_covariance(frame, pair, 720)
    assert np.diag(cov) == pytest.approx([0.02**2, 0.02**2])
    base, _ = portfolio_view(frame, pair, PolicyConfig())
    planted = frame.assign(volatility=[0.02, 0.06])  # the risk model expects ETH three times as volatile
    moved, _ = portfolio_view(planted, pair, PolicyConfig())
    assert np.diag(forecast_risk_covariance(planted, pair, 720)) == pytest.approx([0.02**2, 0.06**2])
    for method in ("min_variance", "risk_parity", "inverse_vol"):
        assert moved.loc["ETH/USDT", method] < base.loc["ETH/USDT", method] - 0.1, method
    rp = moved["risk_parity"].to_numpy()
    assert risk_contributions(rp, forecast_risk_covariance(planted, pair, 720).to_numpy()) == pytest.approx([0.5, 0.5])


def test_a_short_common_history_is_a_clear_error(pair):
    short = {s: c.tail(10) for s, c in pair.items()}
    with pytest.raises(ValueError, match="only 9 candles are common"):
        forecast_risk_covariance(_latest(short, {"BTC/USDT": 0.0, "ETH/USDT": 0.0}), short, 720)
