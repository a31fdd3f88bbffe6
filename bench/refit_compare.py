"""The stale and the refit backtest side by side on one pair: what refitting at each test start changes.

    .venv/bin/python bench/refit_compare.py     # BTC/USDT 1h, h=24: returns (naive, lstm), volatility (har, garch)

Both modes run on the same folds and windows (`candlecast backtest --refit stale|cutoff`): ``stale``
scores each fold's model fitted before its calibration block, ``cutoff`` refits it at the test start
on every row before it with the epochs (or penalty) chosen on its early-stopping block, as the shipped
model is refit to the data cutoff. The LSTM is small and untuned (default hyperparameters, few
epochs): this compares procedures, not models. Prints one markdown table and the wall time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "binance"
RUNS = {"returns": "naive,lstm", "volatility": "har,garch"}
SHOWN = {
    "returns": ["rmse_ratio", "coverage", "dm_pvalue"],
    "volatility": ["qlike", "qlike_ratio_garch", "var99_hit_rate", "var99_kupiec_p"],
}


def run(pair: str, target: str, refit: str, horizon: int, epochs: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from candlecast.config import RunConfig
    from candlecast.forecasting.backtest import load_source, run_backtest

    cfg = RunConfig.model_validate(
        {
            "target": target,
            "features": {"horizon": horizon, "lookback": 48},
            "split": {"test_folds": 3, "test_fraction": 0.3, "val_fraction": 0.1, "cal_fraction": 0.1},
            "train": {"max_epochs": epochs, "threads": 1},
            "backtest": {"refit": refit},
        }
    )
    result, _ = run_backtest(load_source(str(DATA / f"binance_{pair}_1h.csv.gz")), RUNS[target].split(","), cfg)
    return result.summary, result.per_fold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pair", default="BTC-USDT")
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=3, help="the LSTM's max epochs per fold fit")
    args = parser.parse_args()
    started = time.perf_counter()
    lines = ["| target | model | metric | stale | cutoff |", "|---|---|---|---:|---:|"]
    for target in RUNS:
        stale, sf = run(args.pair, target, "stale", args.horizon, args.epochs)
        cutoff, cf = run(args.pair, target, "cutoff", args.horizon, args.epochs)
        for model in stale.index:
            for metric in SHOWN[target]:
                if metric in stale.columns and pd.notna(stale.loc[model, metric]):
                    lines.append(
                        f"| {target} | {model} | {metric} | {stale.loc[model, metric]:.4f} "
                        f"| {cutoff.loc[model, metric]:.4f} |"
                    )
            if target == "returns":  # the 80% interval's coverage per fold: the issue asks 0.77-0.83 in each
                per_fold = [" ".join(f"{c:.3f}" for c in f[f["model"] == model]["coverage"]) for f in (sf, cf)]
                lines.append(f"| {target} | {model} | coverage per fold | {per_fold[0]} | {per_fold[1]} |")
    print(f"{args.pair} 1h, h={args.horizon}, 3 test folds over the last 30%")
    print("\n".join(lines))
    print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
