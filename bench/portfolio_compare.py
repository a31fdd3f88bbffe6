"""Portfolio weighting compared on real candles: equal, min-variance and risk-parity weights from forecast risk.

    .venv/bin/python bench/portfolio_compare.py                  # BTC, ETH, BNB, SOL, XRP 1h, EWMA, hold 24
    .venv/bin/python bench/portfolio_compare.py --risk-model har --pairs BTC-USDT,ETH-USDT

The same path as `candlecast trade backtest --portfolio` (candlecast.trading.runner.compare_portfolio):
the risk model walked forward with `target: volatility` (three folds over the last 30% of each pair),
then at every holding period the covariance of its variance forecasts with a 30-day shrunk correlation,
one long-only fully invested portfolio per weighting, and buy-and-hold, through NautilusTrader after
the default fees and slippage. Prints the table (docs/risk.md says what each column is), one verdict
line, how far clipping the closed-form minimum variance falls from the exact one on the same
rebalances, and the wall time. The report lands in --out (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="BTC-USDT,ETH-USDT,BNB-USDT,SOL-USDT,XRP-USDT")
    parser.add_argument("--risk-model", default="ewma")
    parser.add_argument("--hold", type=int, default=24)
    parser.add_argument("--band", type=float, default=0.02, help="no-trade band, fraction of equity")
    parser.add_argument("--corr-days", type=float, default=30.0)
    parser.add_argument(
        "--fee-bps", type=float, default=10.0, help="maker and taker fee (0 with 0 slippage: frictionless)"
    )
    parser.add_argument("--slippage-bps", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from real_pairs import pair_sources, walk_forward_config

    from candlecast.trading.allocation import METHODS
    from candlecast.trading.config import TradingConfig
    from candlecast.trading.runner import compare_portfolio, load_market, walk_forward_risk
    from candlecast.trading.stats import format_stat
    from candlecast.trading.weighting import PORTFOLIO_COLUMNS

    started = time.perf_counter()
    sources = pair_sources(args.pairs)
    cfg = walk_forward_config(args.hold)
    market, _ = load_market(sources)
    risk = walk_forward_risk(sources, [args.risk_model], cfg)[args.risk_model]
    walked = time.perf_counter()
    costs = {"taker_fee_bps": args.fee_bps, "maker_fee_bps": args.fee_bps, "slippage_bps": args.slippage_bps}
    tcfg = TradingConfig.parse({"policy": {"no_trade_band": args.band}, "execution": costs, "hold": args.hold})
    out = args.out or Path(tempfile.mkdtemp(prefix="portfolio-")) / "report"
    header = (
        f"{args.pairs} 1h, weights from {args.risk_model}, rebalance every {args.hold}, band {args.band:g}, "
        f"fees {args.fee_bps:g} bp, slippage {args.slippage_bps:g} bp"
    )
    outcome, table = compare_portfolio(market, risk, list(METHODS), tcfg, out, header, args.corr_days)
    print(f"### {header}\n")
    cols = list(PORTFOLIO_COLUMNS)
    print("| weights | " + " | ".join(PORTFOLIO_COLUMNS[c] for c in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for name, row in table.iterrows():
        print(f"| {name} | " + " | ".join(format_stat(c, row[c]) for c in cols) + " |")
    print()
    print(verdict(table))
    print(clipping_gap(risk, market, args.hold, args.corr_days))
    seconds = time.perf_counter() - started
    walk, engine = walked - started, outcome.engine_seconds
    print(f"\nwall {seconds:.0f} s (walk-forward {walk:.0f} s, NautilusTrader {engine:.0f} s); report {out}")


def verdict(table: pd.DataFrame) -> str:
    """Which weighting wins on Sharpe, drawdown and forecast-vol tracking; which has lower daily variance (DM)."""
    weights = table.drop(index="buy_and_hold", errors="ignore")
    best_sharpe = str(weights["sharpe"].idxmax())
    best_dd = str(weights["max_drawdown"].idxmax())  # drawdowns are negative: the largest is the smallest loss
    best_track = str((np.log(weights["forecast_vol_ratio"])).abs().idxmin())
    lower = [str(n) for n, p in weights["sq_return_dm_p"].dropna().items() if p < 0.05]
    return (
        f"best Sharpe {best_sharpe}, smallest drawdown {best_dd}, realized/forecast volatility closest to 1 "
        f"{best_track}; daily variance significantly below equal weight's (DM p < 0.05): {', '.join(lower) or 'none'}"
    )


def clipping_gap(risk: pd.DataFrame, market, hold: int, corr_days: float) -> str:
    """How much more variance the clipped closed form carries than the exact long-only minimum, and the time."""
    from candlecast.trading.allocation import clipped_min_variance_weights, min_variance_weights
    from candlecast.trading.weighting import rebalance_weights

    window = max(int(corr_days * 86_400_000 / market.step), 30)
    reb = rebalance_weights(risk, market.candles, hold, market.step, window, ("equal",))
    shorts = sum(bool((np.linalg.solve(c, np.ones(len(c))) < 0).any()) for c in reb.cov)
    t0 = time.perf_counter()
    exact = [min_variance_weights(c) for c in reb.cov]
    t1 = time.perf_counter()
    clipped = [clipped_min_variance_weights(c) for c in reb.cov]
    t2 = time.perf_counter()
    ratio = np.array([(k @ c @ k) / (e @ c @ e) for e, k, c in zip(exact, clipped, reb.cov, strict=True)])
    return (
        f"min variance on {len(reb.cov)} rebalances: the closed form shorts at {shorts}; clipped, its variance is "
        f"{np.median(ratio):.3f}x the exact optimum's (median, max {ratio.max():.3f}); "
        f"{1000 * (t1 - t0) / len(reb.cov):.1f} ms per exact solve, {1000 * (t2 - t1) / len(reb.cov):.2f} ms clipped"
    )


if __name__ == "__main__":
    main()
