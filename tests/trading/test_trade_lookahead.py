"""No look-ahead in the trading layer, shown with oracles through the real NautilusTrader engine.

An oracle that knows the realized next-candle return, acted on at the bar where it would have been
known (the close of its cutoff candle), must make huge profits; the same oracle one bar late must make
nothing beyond chance; an oracle stamped one bar early (which would trade on the future) is refused.
"""

from __future__ import annotations

import numpy as np
import pytest
from trading_helpers import HOUR, forecast_frame, frictionless, oracle, random_walk, real_candles

from candlecast.trading.backtest import trade_backtest
from candlecast.trading.engine import Market
from candlecast.trading.forecasts import ForecastError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(params=["random_walk", pytest.param("real", marks=pytest.mark.real_data)])
def market(request) -> dict:
    """A driftless random walk (no edge exists by construction) and the real BTC/ETH hourly candles."""
    if request.param == "real":
        shared = request.getfixturevalue("shared_data")
        return {f"{b}/USDT": real_candles(shared, b, 1500) for b in ("BTC", "ETH")}
    return {s: random_walk(s, 1500, seed=i) for i, s in enumerate(("BTC/USDT", "ETH/USDT"))}


def _trade(candles, values, mode="next_open"):
    frame = forecast_frame(candles, values, horizon=1).dropna(subset=["forecast"])
    result = trade_backtest(Market("1h", candles), {"oracle": frame}, frictionless(mode=mode), buy_and_hold=False)
    return result.runs["oracle"].stats


@pytest.mark.parametrize("mode", ["next_open", "close"])
def test_an_oracle_at_the_right_bar_makes_huge_profits(market, mode):
    stats = _trade(market, oracle(market), mode)
    assert stats["total_return"] > 1.0  # more than doubles in ~2 months of hourly bars
    assert stats["t_stat"] > 15
    assert stats["hit_rate"] > 0.8


def test_the_same_oracle_one_bar_late_makes_nothing_beyond_chance(market):
    stats = _trade(market, oracle(market, late=1))
    assert abs(stats["t_stat"]) < 3, stats
    assert abs(stats["total_return"]) < 0.5
    assert 0.4 < stats["hit_rate"] < 0.6


def test_an_oracle_stamped_one_bar_early_is_refused_before_any_trade(market):
    frame = forecast_frame(market, oracle(market), horizon=1).dropna(subset=["forecast"])
    early = frame.assign(cutoff=frame["cutoff"] - HOUR)
    with pytest.raises(ForecastError, match="stamped one candle early"):
        trade_backtest(Market("1h", market), {"oracle": early}, frictionless())


def test_a_forecast_is_never_traded_before_its_cutoff_candle_closes(pair):
    values = {s: np.where(np.arange(len(c)) % 7 == 0, 0.01, -0.01) for s, c in pair.items()}
    frame = forecast_frame(pair, values, horizon=1)
    for mode, delay in (("close", 0), ("next_open", 100)):
        result = trade_backtest(Market("1h", pair), {"m": frame}, frictionless(mode=mode), buy_and_hold=False)
        fills = result.runs["m"].fills
        # the signs flip every few bars: both symbols trade many times (no fills would pass every check below)
        assert fills.groupby("symbol").size().reindex(list(pair), fill_value=0).min() >= 10, fills
        first = {s: int(frame.loc[frame["symbol"] == s, "cutoff"].min()) for s in pair}
        for symbol, rows in fills.groupby("symbol"):
            assert rows["ts"].min() == first[symbol] + HOUR + delay
        known_at = np.sort(frame["cutoff"].unique() + HOUR + delay)
        closing = known_at[-1] + HOUR  # the last forecast's holding period ends one bar after it
        fill_ts = fills["ts"].to_numpy().astype("int64")
        assert np.isin(fill_ts, [*known_at, closing]).all()  # every fill at a bar where a forecast was known
