"""The HAR family on real candles: HAR-range, HARQ and HAR-J next to log-HAR and GARCH, QLIKE and DM p.

    .venv/bin/python bench/har_family.py                       # BTC and ETH, h = 1 and 24
    .venv/bin/python bench/har_family.py --pairs SOL-USDT --horizons 24

Same engine, folds and windows as bench/risk_table.py (`candlecast backtest --target volatility`, three
folds over the last 30% of each pair): QLIKE, its ratio to GARCH's and to log-HAR's with one-sided
Diebold-Mariano p-values (is the row's model better?), and the 99% VaR's hit rate. Below each pair and
horizon, the line says which model has the lowest QLIKE and whether any of the new ones beats log-HAR
with DM p < 0.05. Tables land in --out (default: a temporary folder); nothing else is written.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
MODELS = "garch,har,har_range,harq,har_j"
NEW = ("har_range", "harq", "har_j")


def run(pair: str, horizon: int, out: Path) -> tuple[pd.DataFrame, float]:
    """One backtest of every model on one pair and horizon; its summary and wall time."""
    from candlecast.config import RunConfig
    from candlecast.forecasting.backtest import load_source, run_backtest, write_tables

    cfg = RunConfig.model_validate(
        {
            "target": "volatility",
            "features": {"horizon": horizon, "lookback": 48},
            "split": {"test_folds": 3, "test_fraction": 0.3, "val_fraction": 0.1, "cal_fraction": 0.1},
        }
    )
    started = time.perf_counter()
    source = load_source(str(DATA / "binance" / f"binance_{pair}_1h.csv.gz"))
    result, folds = run_backtest(source, MODELS.split(","), cfg)
    seconds = time.perf_counter() - started
    write_tables(result, out, f"har_family_{pair}_h{horizon}", f"{pair} h={horizon}: {len(folds)} folds")
    return result.summary, seconds


def rows(pair: str, horizon: int, summary: pd.DataFrame) -> list[str]:
    lines = []
    for model, row in summary.iterrows():
        cells = [pair.replace("-", "/"), str(horizon), str(model), f"{row['qlike']:.4f}"]
        cells += [_num(row.get("qlike_ratio_garch")), _num(row.get("dm_p_garch"), 2)]
        cells += [_num(row.get("qlike_ratio_har")), _num(row.get("dm_p_har"), 2), f"{row['var99_hit_rate']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def verdict(pair: str, horizon: int, summary: pd.DataFrame) -> str:
    best = str(summary["qlike"].idxmin())
    winners = [m for m in NEW if summary.loc[m, "dm_p_har"] < 0.05]
    beats = f"{', '.join(winners)} beat log-HAR at DM p < 0.05" if winners else "no new model beats log-HAR at p < 0.05"
    return f"- {pair.replace('-', '/')} h={horizon}: lowest QLIKE {best}; {beats}"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default="BTC-USDT,ETH-USDT")
    parser.add_argument("--horizons", default="1,24")
    parser.add_argument("--out", type=Path, default=None, help="where the CSV and markdown tables go")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="har_family_"))
    header = ["pair", "h", "model", "QLIKE", "/ GARCH", "DM p", "/ log-HAR", "DM p", "VaR99 hits"]
    table = ["| " + " | ".join(header) + " |", "|---|---:|---|" + "---:|" * (len(header) - 3)]
    verdicts, started = [], time.perf_counter()
    for pair in args.pairs.split(","):
        for horizon in map(int, args.horizons.split(",")):
            summary, seconds = run(pair, horizon, out)
            table += rows(pair, horizon, summary)
            verdicts.append(verdict(pair, horizon, summary) + f" ({seconds:.0f} s)")
    print("\n".join(table))
    print("\n" + "\n".join(verdicts))
    print(f"\n{len(verdicts)} backtests in {time.perf_counter() - started:.0f} s wall; tables in {out}")


if __name__ == "__main__":
    main()
