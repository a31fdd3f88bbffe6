"""NautilusTrader run time of a trading backtest: 5 years of hourly bars for 5 symbols (target under 60 s).

Real Binance candles from ../shared/data/binance (BTC, ETH, BNB, SOL, XRP USDT, 1h, 2020-09 to 2025-09,
43,803 candles each). The forecasts are seeded noise with realistic size (the trailing 24-hour
volatility sets the interval), one per symbol every ``--hold`` candles, so the engine sees a real
order flow: the model strategy rebalances at every forecast (vol-targeted, no-trade band),
buy-and-hold trades once. Prints the engine time of each strategy, the whole `trade_backtest` call
(validation, both engine runs, equity and statistics) and the orders. Nothing is asserted.

    .venv/bin/python bench/trade_backtest.py [--symbols 5] [--hold 24] [--mode next_open]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance"
BASES = ["BTC", "ETH", "BNB", "SOL", "XRP"]


def noise_forecasts(candles: dict[str, pd.DataFrame], hold: int, seed: int = 0) -> pd.DataFrame:
    """Seeded random forecasts on a ``hold`` grid, stamped correctly, with a trailing-volatility interval."""
    rng = np.random.default_rng(seed)
    parts = []
    for symbol, c in candles.items():
        log_ret = np.log(c["close"]).diff()
        sigma = (log_ret.rolling(24).std() * np.sqrt(hold)).to_numpy()
        rows = np.arange(48, len(c) - hold - 1, hold)
        point = rng.normal(0.0, 0.3, len(rows)) * sigma[rows]
        parts.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "timeframe": "1h",
                    "cutoff": c["timestamp"].to_numpy("int64")[rows],
                    "horizon": hold,
                    "close": c["close"].to_numpy("float64")[rows],
                    "forecast": point,
                    "lower": point - 1.28 * sigma[rows],
                    "upper": point + 1.28 * sigma[rows],
                    "coverage": 0.8,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument("--hold", type=int, default=24)
    parser.add_argument("--mode", default="next_open", choices=["next_open", "close"])
    args = parser.parse_args()

    from candlecast.trading.backtest import trade_backtest
    from candlecast.trading.config import TradingConfig
    from candlecast.trading.engine import Market

    candles = {f"{b}/USDT": pd.read_csv(DATA / f"binance_{b}-USDT_1h.csv.gz") for b in BASES[: args.symbols]}
    bars = sum(len(c) for c in candles.values())
    frame = noise_forecasts(candles, args.hold)
    cfg = TradingConfig.parse({"execution": {"mode": args.mode}, "policy": {"max_drawdown": None}})
    print(f"{args.symbols} symbols, {bars:,} hourly bars, {len(frame):,} forecasts (hold {args.hold}), {args.mode}")

    start, cpu = time.perf_counter(), time.process_time()
    result = trade_backtest(Market("1h", candles), {"noise": frame}, cfg)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu
    for name, run in result.runs.items():
        print(
            f"  {name:13s} engine.run {run.engine_seconds:6.1f} s, {int(run.stats['trades']):,} fills, "
            f"return {run.stats['total_return']:+.1%}"
        )
    print(f"NautilusTrader run time (both strategies): {result.engine_seconds:.1f} s (target < 60 s)")
    print(
        f"whole trade_backtest call (validation, engine set-up and runs, equity, statistics): {total:.1f} s wall, "
        f"{cpu:.1f} s CPU (on a shared machine the CPU time is what an idle one would take)"
    )


if __name__ == "__main__":
    main()
