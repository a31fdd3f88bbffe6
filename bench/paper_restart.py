"""How long a paper account takes to resume after a restart, against the length of its ledger.

    nice -n 10 .venv/bin/python bench/paper_restart.py                # ledgers of 300 and 3000 bars
    nice -n 10 .venv/bin/python bench/paper_restart.py --bars 300     # one size

Each size: a fresh state folder, a synthetic 1h series and a planted forecast at every candle (its sign
flips every 5 candles, so the account trades), the account advanced bar by bar over ``--bars`` candles
(what the live loop does), then the restart timed: ``PaperAccount(...)``, which rebuilds the engine from
the files and checks it against the ledger's last line (best of 3): from the checkpoint (the bar it saved,
fed again), and with the checkpoint removed (every bar of the ledger fed again, as before checkpoints).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HOUR = 3_600_000


def _forecasts(candles: pd.DataFrame) -> pd.DataFrame:
    """A stored forecast (the predict flow's columns) at every candle, its sign flipping every 5 candles."""
    steps = np.arange(1, 3)
    frames = []
    for i, (t, close) in enumerate(zip(candles["timestamp"], candles["close"], strict=True)):
        r = 0.01 if (i // 5) % 2 else -0.01
        price = close * np.exp(r * steps)
        frames.append(
            pd.DataFrame(
                {
                    "cutoff": int(t), "step": steps, "timestamp": int(t) + steps * HOUR, "forecast": price,
                    "lower": price * 0.99, "upper": price * 1.01, "forecast_log_return": r * steps,
                    "exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "model_name": "m",
                    "model_version": "1", "run_id": "r", "created_at": "2026-12-04",
                }
            )
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def one(bars: int, root: Path) -> tuple[float, float, float]:
    """Seconds to trade ``bars`` bars one at a time, then to restart (best of 3) from the checkpoint and without."""
    os.environ["CANDLECAST_HOME"] = str(root / "state")
    from candlecast.config import RunConfig
    from candlecast.data.candle_store import CandleStore
    from candlecast.devtools.synthetic import synthetic_candles
    from candlecast.live.paper import PaperAccount, paper_dir, trading_config
    from candlecast.registry.prediction_store import prediction_store
    from candlecast.settings import Settings

    (root / "paper.yaml").write_text(yaml.safe_dump({"policy": {"name": "sign", "no_trade_band": 0.0}, "hold": 1}))
    cfg = RunConfig.model_validate(
        {
            "name": "paper", "data": {"symbols": ["BTC/USDT"], "timeframe": "1h"},
            "live": {"paper": True, "paper_trading": str(root / "paper.yaml")},
        }
    )  # fmt: skip
    settings, series = Settings(), cfg.series[0]
    candles = synthetic_candles("BTC/USDT", 1_704_067_200_000, bars + 40, seed=5)
    CandleStore(settings.candles_dir).upsert(series, candles)
    live = candles.iloc[40:]
    prediction_store(settings, cfg.predict.store_url).write(series, _forecasts(live))
    ts = live["timestamp"].tolist()
    account = PaperAccount(settings, cfg, series, trading_config(cfg))
    started = time.perf_counter()
    for t in ts:  # one bar per call, as the loop hands them over
        account.advance(ts[0], t)
    traded = time.perf_counter() - started
    account.close()
    checkpoint = paper_dir(settings) / series.slug / "checkpoint.json"
    saved = checkpoint.read_text()
    best = {}
    for mode in ("checkpoint", "whole ledger"):
        best[mode] = float("inf")
        for _ in range(3):
            if mode == "whole ledger":
                checkpoint.unlink(missing_ok=True)  # the restart before checkpoints: every bar fed again
            started = time.perf_counter()
            resumed = PaperAccount(settings, cfg, series, trading_config(cfg))
            best[mode] = min(best[mode], time.perf_counter() - started)
            assert resumed.replayed == (0 if mode == "checkpoint" else bars)
            resumed.close()
    checkpoint.write_text(saved)
    return traded, best["checkpoint"], best["whole ledger"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, nargs="+", default=[300, 3000])
    args = parser.parse_args()
    wall = time.perf_counter()
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    for bars in args.bars:
        with tempfile.TemporaryDirectory(prefix="candlecast-paper-bench-") as tmp:
            traded, resumed, replayed = one(bars, Path(tmp))
        print(
            f"{bars} bars: traded one at a time in {traded:.1f} s ({1000 * traded / bars:.1f} ms/bar); restart "
            f"{resumed:.3f} s from the checkpoint, {replayed:.3f} s replaying the whole ledger (best of 3)"
        )
    print(f"load average {os.getloadavg()[0]:.1f} at the end; wall {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
