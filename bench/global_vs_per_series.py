"""A global model against one model per series (and the pooled default) on the same folds, on real candles.

Five real Binance 1h series (BTC, ETH, BNB, SOL, XRP against USDT) share one timeline. Three ways to
model them, each walked over the same evaluation folds of that timeline and scored on the same test
windows, next to the naive random walk (candlecast.forecasting.multi_series.compare_global):

    global      one LSTM over all five, each series scaled on its own training rows, its id one-hot
    per_series  five LSTMs, each fitted on its own series alone
    pooled      one LSTM over all five with one shared scaler and no id (the pipeline's default)

Every contestant uses the architecture's default hyperparameters (no tuning for this comparison) and
the same training settings. Diebold-Mariano compares global with per-series on the same windows.

    .venv/bin/python bench/global_vs_per_series.py [--candles 8000] [--folds 3] [--max-epochs 6] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance"
SYMBOLS = ["BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT"]
COLUMNS = ["rmse_ratio", "rmse_ratio_first_step", "rmse_ratio_last_step", "dm_pvalue", "directional_accuracy"]
COLUMNS += ["coverage", "width", "windows", "fit_seconds"]


def load(args: argparse.Namespace):
    """The five series' features over their common last ``--candles`` candles, as SeriesArrays."""
    from candlecast.features.compute import series_features
    from candlecast.features.windows import SeriesArrays

    cfg = run_config(args)
    series = []
    for symbol in SYMBOLS:
        path = DATA / f"binance_{symbol.replace('/', '-')}_1h.csv.gz"
        if not path.exists():
            sys.exit(f"{path} not found: this bench needs the real candle files in ../shared/data")
        candles = pd.read_csv(path).tail(args.candles).reset_index(drop=True)
        s = SeriesArrays.from_frame(symbol, series_features(candles, cfg.features, "1h"), cfg.features.horizon)
        s.mark_windows(cfg.features.lookback, 3_600_000)
        series.append(s)
    return cfg, series


def run_config(args: argparse.Namespace):
    from candlecast.config import RunConfig

    return RunConfig.model_validate(
        {
            "name": "global-vs-per-series",
            "data": {"symbols": SYMBOLS},
            "split": {"test_fraction": 0.2, "test_folds": args.folds, "val_fraction": 0.1, "cal_fraction": 0.1},
            "train": {"max_epochs": args.max_epochs, "patience": 2, "threads": args.threads, "seed": 42},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=8000, help="last candles of each series")
    parser.add_argument("--folds", type=int, default=3, help="evaluation folds tiling the last 20%%")
    parser.add_argument("--max-epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="lstm")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from candlecast.forecasting.multi_series import compare_global

    cfg, series = load(args)
    print(
        f"data: {', '.join(SYMBOLS)} 1h, last {args.candles} candles each; {args.folds} evaluation folds; "
        f"{args.model} with default hyperparameters, <= {args.max_epochs} epochs, {args.threads} thread(s)",
        flush=True,
    )
    start = time.perf_counter()

    def progress(name: str, fold: int, metrics: dict[str, float]) -> None:
        print(
            f"  {time.perf_counter() - start:7.0f} s  fold {fold} {name}: rmse_ratio {metrics['rmse_ratio']:.4f} "
            f"({metrics['fit_seconds']:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    result = compare_global(series, cfg, args.model, {}, on_fold=progress)
    print("\nall five series' test windows pooled (each window on its own fold's scale):")
    print(result.summary[COLUMNS].to_string(float_format=lambda v: f"{v:.4f}"))
    print("\nRMSE ratio to naive per series:")
    print(result.per_series.to_string(float_format=lambda v: f"{v:.4f}"))
    stat, p = result.dm_global_vs_per_series
    print(f"\nDiebold-Mariano, global vs per-series on the same windows: statistic {stat:.3f}, one-sided p {p:.3f}")
    print(
        f"(p < 0.05: global has lower squared error; p > 0.95: per-series has); "
        f"total {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
