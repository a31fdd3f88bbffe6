"""Regenerate the README's real-data return-forecast table: every model on the same folds, next to naive.

    .venv/bin/python bench/backtest_table.py            # both pairs in parallel (one torch thread each)
    .venv/bin/python bench/backtest_table.py --pairs BTC-USDT --models naive,drift

Runs `candlecast backtest`'s core on the shared Binance 1h files with the settings below, writes the
full tables to docs/results/, and rewrites the README section between its markers. The settings are
fixed here, not tuned: change them only with a reason, and say so in the commit.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "binance"
MODELS = "naive,drift,snaive,ridge,arima,ets,prophet,lstm,attention_lstm,cnn_lstm"
SETTINGS = {
    "features": {"horizon": 24, "lookback": 48, "indicators": True, "higher_timeframes": ["4h", "1d"]},
    "split": {"test_folds": 3, "test_fraction": 0.3, "val_fraction": 0.1, "cal_fraction": 0.1},
    "train": {"max_epochs": 5, "threads": 1},
}
COLUMNS = {
    "rmse_ratio": "RMSE / naive",
    "rmse_ratio_first_step": "step 1",
    "rmse_ratio_last_step": "step 24",
    "directional_accuracy": "direction",
    "coverage": "80% coverage",
    "coverage_folds": "per fold",
    "coverage_static": "static",
    "dm_pvalue": "DM p",
}
START, END = "<!-- returns-table:start -->", "<!-- returns-table:end -->"


def run_pair(pair: str, models: str, out: Path) -> Path:
    from candlecast.config import RunConfig
    from candlecast.forecasting.backtest import load_source, run_backtest, write_tables

    cfg = RunConfig.model_validate(SETTINGS)
    source = load_source(str(DATA / f"binance_{pair}_1h.csv.gz"))
    started = time.perf_counter()
    result, folds = run_backtest(source, models.split(","), cfg)
    write_tables(result, out, source.name, f"{source.name}: {len(folds)} folds, {time.perf_counter() - started:.0f} s")
    return out / f"{source.name}_returns_summary.csv"


def table(pair: str, out: Path) -> str:
    summary = pd.read_csv(out / f"binance_{pair}_1h_returns_summary.csv", index_col="model")
    per_fold = pd.read_csv(out / f"binance_{pair}_1h_returns_per_fold.csv")
    spread = per_fold.groupby("model")["coverage"].agg(["min", "max"])
    lines = ["| model | " + " | ".join(COLUMNS.values()) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for name, row in summary.iterrows():
        cells = []
        for col in COLUMNS:
            if col == "coverage_folds":
                cells.append(f"{spread.loc[name, 'min']:.2f}-{spread.loc[name, 'max']:.2f}")
            elif col in ("directional_accuracy", "coverage", "coverage_static"):
                cells.append(f"{row[col]:.3f}")
            elif col == "dm_pvalue":
                cells.append(f"{row[col]:.2f}")
            else:
                cells.append(f"{row[col]:.4f}" if np.isfinite(row[col]) else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return f"**{pair.replace('-', '/')}**\n\n" + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default="BTC-USDT,ETH-USDT")
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results")
    parser.add_argument("--no-readme", action="store_true", help="print the tables, leave README.md alone")
    args = parser.parse_args()
    pairs = args.pairs.split(",")
    started = time.perf_counter()
    with mp.get_context("spawn").Pool(min(2, len(pairs))) as pool:
        pool.starmap(run_pair, [(p, args.models, args.out) for p in pairs])
    tables = "\n\n".join(table(p, args.out) for p in pairs)
    print(tables)
    print(f"\n{len(pairs)} pairs in {time.perf_counter() - started:.0f} s wall")
    if not args.no_readme:
        readme = REPO / "README.md"
        text = readme.read_text()
        if START not in text:
            raise SystemExit(f"README.md has no {START} ... {END} markers to replace")
        body = f"{START}\n{tables}\n{END}"
        readme.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: body, text, flags=re.S))


if __name__ == "__main__":
    main()
