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
from candlecast.live.paper import PaperAccount, paper_dir, paper_summary, read_ledger, summary_line, trading_config
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
