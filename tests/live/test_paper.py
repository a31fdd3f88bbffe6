"""The paper account's rules on planted forecasts in a real prediction store and a real NautilusTrader engine.

What the champion test (tests/trading/test_champion_flows.py) cannot plant: a candle the exchange
skipped, a forecast that reaches the store while the bar waits for it (forecasts by the deployment),
one that never comes, one made on other candles, a torn ledger line, and a trading config changed
under an existing account.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest
import yaml

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.live.paper import (
    PaperAccount,
    paper_dir,
    paper_summary,
    read_ledger,
    summary_line,
    summary_markdown,
    trading_config,
)
from candlecast.registry.prediction_store import prediction_store
from candlecast.settings import Settings

HOUR = 3_600_000


def _forecast(t: int, close: float, r: float) -> pd.DataFrame:
    """A stored forecast at cutoff ``t`` (the columns the predict flow writes) of log return ``r`` per step."""
    steps = np.arange(1, 3)
    price = close * np.exp(r * steps)
    return pd.DataFrame(
        {
            "cutoff": t, "step": steps, "timestamp": t + steps * HOUR, "forecast": price, "lower": price * 0.99,
            "upper": price * 1.01, "forecast_log_return": r * steps, "exchange": "binance", "symbol": "BTC/USDT",
            "timeframe": "1h", "model_name": "m", "model_version": "1", "run_id": "r", "created_at": "2026-12-04",
        }
    )  # fmt: skip


def test_bars_wait_for_forecasts_trade_only_their_own_and_resume_from_the_checkpoint(home, tmp_path):
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump({"policy": {"name": "sign", "no_trade_band": 0.0}, "hold": 1}))
    cfg = RunConfig.model_validate(
        {
            "name": "paper", "data": {"symbols": ["BTC/USDT"], "timeframe": "1h"},
            "live": {"paper": True, "paper_trading": str(tmp_path / "paper.yaml")},
        }
    )  # fmt: skip
    settings, series = Settings(), cfg.series[0]
    candles = synthetic_candles("BTC/USDT", 1_704_067_200_000, 60, seed=5)
    CandleStore(settings.candles_dir).upsert(series, candles.drop(index=45))  # the exchange skipped one candle
    store = prediction_store(settings, cfg.predict.store_url)
    ts, closes = candles["timestamp"].tolist(), candles["close"].tolist()
    kept = [i for i in range(40, 60) if i != 45]
    for i in kept[:9]:
        store.write(series, _forecast(ts[i], closes[i], 0.01 if i % 2 else -0.01))
    store.write(series, _forecast(ts[50], closes[50] * 1.5, 0.01))  # made on other candles: not traded

    account = PaperAccount(settings, cfg, series, trading_config(cfg))
    late = threading.Timer(0.5, lambda: store.write(series, _forecast(ts[51], closes[51], 0.01)))
    late.start()  # the deployment's forecast reaches the store while the bar waits for it
    lines = account.advance(ts[40], ts[51], wait_s=30)
    late.join()
    assert [r["t"] for r in lines] == [ts[i] for i in kept[:11]]  # across the gap
    assert [r["target"] for r in lines] == [1.0 if i % 2 else -1.0 for i in kept[:9]] + [None, 1.0]
    assert np.sign(lines[1]["position"]) == -1 and np.sign(lines[2]["position"]) == 1  # next open, each way

    checkpoint = paper_dir(settings) / series.slug / "checkpoint.json"
    behind = checkpoint.read_text()
    lines = account.advance(ts[40], ts[52], wait_s=0.3)  # a forecast that never comes: the bar trades without
    assert [r["t"] for r in lines] == [ts[52]] and lines[0]["target"] is None
    account.close()

    checkpoint.write_text(behind)  # a kill after bar 52's ledger line, before its checkpoint
    path = paper_dir(settings) / series.slug / "ledger.jsonl"
    with open(path, "a") as fh:
        fh.write('{"t": 17')  # and one in the middle of the next line
    resumed = PaperAccount(settings, cfg, series, trading_config(cfg))  # checked against the ledger's last line
    assert resumed.replayed == 1  # from the checkpoint's bar, not the first
    assert [r["t"] for r in resumed.advance(ts[40], ts[53])] == [ts[53]]
    resumed.close()
    assert [r["t"] for r in read_ledger(path.parent)] == [ts[i] for i in kept[:13]]
    summary = paper_summary(settings)
    assert summary_line(summary).startswith(f"paper: PnL {summary['book']['pnl']:+,.2f} vs buy-and-hold ")
    assert "over 13 bars of 1 series" in summary_line(summary)

    checkpoint.write_text(json.dumps({**json.loads(checkpoint.read_text()), "t": 17}))  # not a bar of the ledger
    again = PaperAccount(settings, cfg, series, trading_config(cfg))
    assert again.replayed == 13  # the whole ledger, still ending at its last line
    again.close()

    (tmp_path / "paper.yaml").write_text(yaml.safe_dump({"policy": {"name": "sign", "no_trade_band": 0.2}}))
    with pytest.raises(ValueError, match="another trading config"):
        PaperAccount(settings, cfg, series, trading_config(cfg))


def _bars(t0: int, opens: list[float], closes: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": [t0 + i * HOUR for i in range(len(opens))], "open": opens,
            "high": np.maximum(opens, closes) + 1, "low": np.minimum(opens, closes) - 0.5,
            "close": closes, "volume": 10.0,
        }
    )  # fmt: skip


def test_buy_and_hold_pays_the_same_costs_and_the_book_adds_the_accounts(home, tmp_path):
    """Hand-computed: 10,000 bought at the first close, filled at the next open plus 2 bps, 10 bps fee, held.

    BTC: 50 coins (10,000 / 200.00) filled at 201.04 (201.00 * 1.0002 at the 0.01 tick), fee 50 * 201.04
    * 0.001 = 10.052, so cash -62.052 and equity -62.052 + 50 * close. ETH the same way: 100 coins at
    100.52, fee 10.052. The BTC account is told "long" at every bar (band 0.1: never resized), so its
    line is buy-and-hold's to the cent; the ETH account has no forecast and stays flat.
    """
    (tmp_path / "paper.yaml").write_text(
        yaml.safe_dump(
            {"policy": {"name": "sign", "no_trade_band": 0.1}, "hold": 1, "execution": {"starting_capital": 10_000}}
        )
    )
    cfg = RunConfig.model_validate(
        {
            "name": "paper", "data": {"symbols": ["BTC/USDT", "ETH/USDT"], "timeframe": "1h"},
            "live": {"paper": True, "paper_trading": str(tmp_path / "paper.yaml")},
        }
    )  # fmt: skip
    settings, (btc, eth) = Settings(), cfg.series
    t0 = 1_704_067_200_000
    markets = {
        btc: _bars(t0, [199.99, 201.0, 202.0, 190.5, 195.0], [200.0, 202.5, 190.0, 195.0, 210.0]),
        eth: _bars(t0, [99.99, 100.5, 101.0, 99.0, 98.5], [100.0, 101.0, 99.0, 98.0, 103.0]),
    }
    store = prediction_store(settings, cfg.predict.store_url)
    for series, candles in markets.items():
        CandleStore(settings.candles_dir).upsert(series, candles)
    for t, close in zip(markets[btc]["timestamp"], markets[btc]["close"], strict=True):
        store.write(btc, _forecast(int(t), close, 0.01))
    for series, candles in markets.items():
        account = PaperAccount(settings, cfg, series, trading_config(cfg))
        for t in candles["timestamp"]:
            account.advance(t0, int(t))
        account.close()

    hold = {btc: -62.052 + 50 * markets[btc]["close"], eth: -62.052 + 100 * markets[eth]["close"]}
    for series, qty, price in ((btc, 50.0, 201.04), (eth, 100.0, 100.52)):
        ledger = read_ledger(paper_dir(settings) / series.slug)
        assert ledger[1]["hold_fills"] == [{"ts": t0 + HOUR + 100, "qty": qty, "price": price, "fee": 10.052}]
        np.testing.assert_allclose([r["buy_hold"] for r in ledger], [10_000, *hold[series][1:]], rtol=0, atol=1e-6)
    assert [r["equity"] for r in ledger] == [10_000.0] * 5  # ETH: no forecast, no trade

    summary = paper_summary(settings)
    mine, flat = summary["series"]
    assert mine["equity"] == pytest.approx(10_437.948) and mine["buy_and_hold"] == pytest.approx(437.948)
    assert mine["excess"] == pytest.approx(0, abs=1e-6) and mine["fees"] == pytest.approx(mine["buy_and_hold_fees"])
    assert mine["max_drawdown"] == pytest.approx(1 - 9_437.948 / 10_062.948)  # the fall to 190.00
    assert flat["pnl"] == 0 and flat["excess"] == pytest.approx(-237.948) and flat["fees"] == 0
    book = summary["book"]
    assert (book["capital"], book["fills"], book["bars"]) == (20_000, 1, 10)
    assert book["pnl"] == pytest.approx(437.948) and book["buy_and_hold"] == pytest.approx(675.896)
    assert book["excess"] == pytest.approx(-237.948) and book["buy_and_hold_fees"] == pytest.approx(20.104)
    assert book["max_drawdown"] == pytest.approx(1 - 19_437.948 / 20_062.948)  # of the summed equity
    assert book["buy_and_hold_max_drawdown"] == pytest.approx(1 - 19_275.896 / 20_100.896)
    assert summary_line(summary) == (
        "paper: PnL +437.95 vs buy-and-hold +675.90 after the same costs (excess -237.95; fees 10.05 vs 20.10) "
        "over 10 bars of 2 series, 1 fills, max drawdown 3.1%"
    )
    table = summary_markdown(summary)
    assert (
        "| **book** | 10 | | 1 | 10.05 | | 20,437.95 | 437.95 (+2.19%) | 675.90 (+3.38%) | -237.95 (-1.19%) |" in table
    )
