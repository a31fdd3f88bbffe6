"""Sizing compared on real candles: vol_target sized by each risk model, constant and buy-and-hold.

    .venv/bin/python bench/sizing_compare.py                              # BTC and ETH 1h, hold 24
    .venv/bin/python bench/sizing_compare.py --pairs BTC-USDT,ETH-USDT,BNB-USDT,SOL-USDT,XRP-USDT

The same path as `candlecast trade backtest --sizing-from` (candlecast.trading.runner): each risk model
walked forward with `target: volatility` (three folds over the last 30% of each pair), then one long
vol_target strategy per model on a portfolio of the pairs, through NautilusTrader after the default
fees and slippage. Prints the sizing table (docs/risk.md says what each column is), one verdict line
and the wall time. The report lands in --out (default: a temporary folder); nothing else is written.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="BTC-USDT,ETH-USDT")
    parser.add_argument("--models", default="naive_vol,ewma,garch,har")
    parser.add_argument("--hold", type=int, default=24)
    parser.add_argument("--target-vol", type=float, default=0.3)
    parser.add_argument("--band", type=float, default=0.02, help="no-trade band (the default 0.1 keeps 5 pairs flat)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from real_pairs import pair_sources, walk_forward_config

    from candlecast.trading.config import TradingConfig
    from candlecast.trading.runner import compare_sizing, load_market, walk_forward_risk
    from candlecast.trading.sizing import SIZING_COLUMNS
    from candlecast.trading.stats import format_stat

    started = time.perf_counter()
    sources = pair_sources(args.pairs)
    cfg = walk_forward_config(args.hold)
    models = args.models.split(",")
    market, _ = load_market(sources)
    risk = walk_forward_risk(sources, models, cfg)
    walked = time.perf_counter()
    policy = {"name": "vol_target", "target_vol": args.target_vol, "no_trade_band": args.band}
    tcfg = TradingConfig.parse({"policy": policy, "hold": args.hold})
    out = args.out or Path(tempfile.mkdtemp(prefix="sizing-")) / "report"
    header = f"{args.pairs} 1h hold {args.hold}, target vol {args.target_vol:g}, band {args.band:g}"
    outcome, table = compare_sizing(market, risk, tcfg, out, header)
    print(f"### {header}\n")
    cols = list(SIZING_COLUMNS)
    print("| strategy | " + " | ".join(SIZING_COLUMNS[c] for c in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for name, row in table.iterrows():
        print(f"| {name} | " + " | ".join(format_stat(c, row[c]) for c in cols) + " |")
    print()
    print(verdict(table, models))
    seconds = time.perf_counter() - started
    walk, engine = walked - started, outcome.engine_seconds
    print(f"\nwall {seconds:.0f} s (walk-forward {walk:.0f} s, NautilusTrader {engine:.0f} s); report {out}")


def verdict(table: pd.DataFrame, models: list[str]) -> str:
    """Which sizing wins on Sharpe, drawdown and volatility tracking, and whether tracking beats EWMA's."""
    sized = table.loc[[*models, "constant"]]
    idle = [str(n) for n in sized.index[sized["turnover"] == 0]]
    sized = sized.drop(idle)  # a strategy that never traded has no drawdown to win with
    best_sharpe = str(sized["sharpe"].idxmax())
    best_dd = str(sized["max_drawdown"].idxmax())  # drawdowns are negative: the largest is the smallest loss
    best_track = str(sized["tracking_mse"].idxmin())
    significant = [str(n) for n, p in sized["tracking_dm_p"].dropna().items() if p < 0.05]
    return (
        f"best Sharpe {best_sharpe}, smallest drawdown {best_dd}, best volatility tracking {best_track}; "
        f"tracking error significantly below EWMA's (DM p < 0.05): {', '.join(significant) or 'none'}"
        + (f"; never traded: {', '.join(idle)}" if idle else "")
    )


if __name__ == "__main__":
    main()
