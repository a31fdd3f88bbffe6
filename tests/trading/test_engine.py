"""The NautilusTrader bridge: when and at what price orders fill, what they cost, and equity from the fills."""

from __future__ import annotations

import numpy as np
import pytest
from trading_helpers import HOUR, forecast_frame, frictionless, oracle

from candlecast.trading.backtest import target_table, trade_backtest
from candlecast.trading.config import TradingConfig
from candlecast.trading.engine import Market, run_engine
from candlecast.trading.forecasts import validate_forecasts

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _one_forecast(pair, symbol="BTC/USDT", row=100, horizon=4, value=0.01):
    """A single long forecast at one candle: the simplest thing whose fills can be checked by hand."""
    candles = {symbol: pair[symbol]}
    frame = forecast_frame(candles, horizon=horizon).iloc[row - 50 : row - 49].assign(forecast=value)
    return Market("1h", candles), frame


def _run(market, frame, cfg):
    checked, window = validate_forecasts(frame, market.candles, market.timeframe, cfg.min_coverage)
    return run_engine(market, window, cfg, targets=target_table(checked, cfg, market.step, len(market.candles)))


def test_next_open_fills_at_the_next_candles_open_after_the_latency_with_slippage_and_fees(pair):
    market, frame = _one_forecast(pair)
    cfg = TradingConfig.parse({"policy": {"name": "sign"}, "execution": {"slippage_bps": 5, "taker_fee_bps": 7}})
    run = _run(market, frame, cfg)
    candles = market.candles["BTC/USDT"].set_index("timestamp")
    cutoff = int(frame["cutoff"].iloc[0])
    entry, exit_ = run.fills.iloc[0], run.fills.iloc[1]
    assert len(run.fills) == 2 and entry["qty"] > 0 > exit_["qty"]
    assert entry["ts"] == cutoff + HOUR + 100  # decided at the cutoff candle's close, reached the venue 100 ms later
    assert entry["price"] == pytest.approx(candles.loc[cutoff + HOUR, "open"] * 1.0005, abs=0.011)
    assert exit_["ts"] == cutoff + 5 * HOUR + 100  # held for the 4 candles the forecast spoke about
    assert exit_["price"] == pytest.approx(candles.loc[cutoff + 5 * HOUR, "open"] * 0.9995, abs=0.011)
    notional = (run.fills["qty"].abs() * run.fills["price"]).to_numpy()
    np.testing.assert_allclose(run.fills["fee"], notional * 7e-4, rtol=1e-6, atol=0.01)
    assert entry["qty"] * entry["price"] == pytest.approx(100_000, rel=0.01)  # sign policy: all in (one symbol)


def test_close_mode_fills_at_the_decision_bars_close(pair):
    market, frame = _one_forecast(pair)
    run = _run(market, frame, frictionless(mode="close"))
    cutoff = int(frame["cutoff"].iloc[0])
    closes = market.candles["BTC/USDT"].set_index("timestamp")["close"]
    assert run.fills["ts"].tolist() == [cutoff + HOUR, cutoff + 5 * HOUR]
    assert run.fills["price"].tolist() == pytest.approx([closes.loc[cutoff], closes.loc[cutoff + 4 * HOUR]], rel=1e-9)


def test_equity_from_fills_matches_the_nautilus_account_and_costs_are_charged(pair):
    frame = forecast_frame(pair, oracle(pair, horizon=3), horizon=3)
    costly = TradingConfig.parse({"execution": {"taker_fee_bps": 10, "slippage_bps": 5}})
    result = trade_backtest(Market("1h", pair), {"oracle": frame}, costly)  # raises if equity and account disagree
    free = trade_backtest(Market("1h", pair), {"oracle": frame}, frictionless(), buy_and_hold=False)
    paid, clean = result.runs["oracle"], free.runs["oracle"]
    assert paid.stats["fees"] > 0 and clean.stats["fees"] == 0
    assert paid.stats["total_return"] < clean.stats["total_return"]
    assert paid.equity["equity"].iloc[0] == 100_000
    assert paid.equity.filter(like="position_").iloc[-1].abs().max() == 0  # flat at the end
    assert result.table.index.tolist() == ["oracle", "buy_and_hold"]


def test_buy_and_hold_earns_the_price_path_and_a_zero_forecast_never_trades(pair):
    zero = forecast_frame(pair, horizon=2)
    result = trade_backtest(Market("1h", pair), {"naive": zero}, frictionless())
    assert result.runs["naive"].stats["trades"] == 0
    assert result.runs["naive"].stats["total_return"] == 0
    hold = result.runs["buy_and_hold"]
    assert hold.stats["trades"] == 4  # one entry and one exit per symbol
    fills = hold.fills.groupby("symbol")["price"].agg(["first", "last"])
    expected = 0.5 * (fills["last"] / fills["first"] - 1).sum()  # half the capital in each, never rebalanced
    assert hold.stats["total_return"] == pytest.approx(expected, rel=1e-3)


def test_the_no_trade_band_cuts_turnover(pair):
    frame = forecast_frame(pair, oracle(pair, horizon=1), horizon=1)
    noisy = frame.assign(lower=frame["forecast"] - 0.02 * np.random.default_rng(0).uniform(0.5, 2, len(frame)))
    noisy = noisy.assign(upper=2 * noisy["forecast"] - noisy["lower"])
    vol = {"policy": {"name": "vol_target", "max_drawdown": None}}
    loose = trade_backtest(Market("1h", pair), {"m": noisy}, TradingConfig.parse(vol), buy_and_hold=False)
    vol["policy"]["no_trade_band"] = 0.3
    banded = trade_backtest(Market("1h", pair), {"m": noisy}, TradingConfig.parse(vol), buy_and_hold=False)
    assert banded.runs["m"].stats["trades"] < 0.8 * loose.runs["m"].stats["trades"]


def test_the_drawdown_stop_flattens_and_stops_trading(pair):
    anti = {s: -v for s, v in oracle(pair, horizon=1).items()}  # always wrong: a steady loser
    frame = forecast_frame(pair, anti, horizon=1)
    cfg = TradingConfig.parse({"policy": {"name": "sign", "max_drawdown": 0.05}})
    run = trade_backtest(Market("1h", pair), {"anti": frame}, cfg, buy_and_hold=False).runs["anti"]
    assert run.stop_ms is not None
    assert (run.fills["ts"] <= run.stop_ms + 100).all()  # nothing after the stop's own exits
    equity = run.equity["equity"]
    assert equity.iloc[-1] == equity[equity.index > run.stop_ms + 100].iloc[0]  # flat from the stop on
    assert equity.iloc[-1] > 100_000 * (1 - 0.05 - 0.03)  # stopped near the limit, not far past it


def test_leverage_and_position_caps_hold_at_every_trade(pair):
    frame = forecast_frame(pair, oracle(pair, horizon=1), horizon=1, width=0.001)  # tiny vol: the caps bind
    cfg = TradingConfig.parse(
        {"policy": {"name": "vol_target", "max_leverage": 0.5, "max_position": 0.4, "max_drawdown": None}}
    )
    run = trade_backtest(Market("1h", pair), {"m": frame}, cfg, buy_and_hold=False).runs["m"]
    exposure = run.equity.filter(like="exposure_").abs().max(axis=1)
    # the equal share of leverage 0.5 over two symbols; a position drifting 5% past it is trimmed at the next bar
    assert (exposure > 0.25 * 1.05).mean() < 0.01
    assert exposure.max() <= 0.25 * 1.10
    assert run.equity["gross_exposure"].max() <= 0.5 * 1.10
