"""Regenerate the README's return-forecast table: the per-coin LSTM next to naive on every main pair, h = 1 and 24.

    nice -n 10 .venv/bin/python bench/backtest_table.py           # the whole grid (resumes from its cache)
    .venv/bin/python bench/backtest_table.py --pairs BTC-USDT --horizons 24 --no-readme
    .venv/bin/python bench/backtest_table.py --tables-only         # rebuild the tables from the cache

Same engine and folds as `candlecast backtest` (three folds over the last 30% of each pair, each
fold's model refit on every row before its test start, `backtest.refit: cutoff`, adaptive conformal
80% intervals from the calibration block). RMSE of the cumulative log return over naive's on the same
windows with a one-sided Diebold-Mariano p-value (is the row better?), direction, and the 80%
interval's coverage over all folds and in each fold. Folds whose coverage falls outside 0.77-0.83 are
listed under the table; nothing is tuned to move them. The LSTM has the small settings of
bench/risk_table.py, fixed before any run (no sweep). Each (pair, horizon) is one cell of a
resumable cache in bench/results/returns_cells/.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cells import Cell, load, run_cells  # noqa: E402
from risk_table import PAIRS, TINY_LSTM, replace_between, settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "binance"
CACHE = REPO / "bench" / "results" / "returns_cells"
MODELS = "naive,lstm"
COVERAGE = (0.77, 0.83)
START, END = "<!-- returns-table:start -->", "<!-- returns-table:end -->"


def run_cell(pair: str, horizon: int, models: list[str]) -> tuple[pd.DataFrame, dict]:
    """One backtest of ``models`` on one pair: the summary (fold -1) and the per-fold rows."""
    from candlecast.config import RunConfig
    from candlecast.features.compute import series_features
    from candlecast.features.windows import SeriesArrays
    from candlecast.forecasting.backtest import load_source
    from candlecast.forecasting.neural import neural_forecaster
    from candlecast.forecasting.splits import evaluation_folds_for
    from candlecast.forecasting.targets import Walk, target_of
    from candlecast.forecasting.walkforward import backtest
    from candlecast.schema import timeframe_ms

    cfg = RunConfig.model_validate(settings(horizon) | {"target": "returns"})
    source = load_source(str(DATA / f"binance_{pair}_1h.csv.gz"))
    frame = series_features(source.candles, cfg.features, source.timeframe)
    arrays = SeriesArrays.from_frame(pair, frame, horizon)
    arrays.mark_windows(cfg.features.lookback, timeframe_ms(source.timeframe))
    folds = evaluation_folds_for(arrays.timestamps, cfg)
    target = target_of(cfg)
    factories = {
        m: partial(neural_forecaster, cfg, "lstm", dict(TINY_LSTM)) if m == "lstm" else partial(target.baseline, m, cfg)
        for m in models
    }
    result = backtest(target, factories, [arrays], folds, Walk.of(cfg))
    summary = result.summary.rename_axis("model").reset_index().assign(fold=-1)
    rows = pd.concat([summary, result.per_fold], ignore_index=True)
    return rows.assign(pair=pair, horizon=horizon), {}


def table(rows: pd.DataFrame, pairs: list[str], horizons: list[int]) -> tuple[str, list[str]]:
    """The markdown table over the finished cells, and the folds whose 80% coverage is outside 0.77-0.83."""
    header = ["pair", "h", "model", "RMSE / naive", "DM p", "direction", "80% coverage", "per fold"]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---|" + "---:|" * (len(header) - 3)]
    outside = []
    for pair in pairs:
        for h in horizons:
            cell = rows[(rows["pair"] == pair) & (rows["horizon"] == h)] if not rows.empty else rows
            for model, group in cell.groupby("model", sort=False):
                total = group[group["fold"] == -1].iloc[0]
                folds = group[group["fold"] >= 0].sort_values("fold")
                cells = [pair.replace("-", "/"), str(h), str(model), f"{total['rmse_ratio']:.4f}"]
                cells += [
                    f"{total['dm_pvalue']:.2f}",
                    f"{total['directional_accuracy']:.3f}",
                    f"{total['coverage']:.3f}",
                ]
                cells.append(" / ".join(f"{c:.3f}" for c in folds["coverage"]))
                lines.append("| " + " | ".join(cells) + " |")
                outside += [
                    f"- {pair.replace('-', '/')} h={h} {model} fold {int(f['fold'])}: {f['coverage']:.4f}"
                    for _, f in folds.iterrows()
                    if not COVERAGE[0] <= f["coverage"] <= COVERAGE[1]
                ]
    return "\n".join(lines), outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default=PAIRS)
    parser.add_argument("--horizons", default="1,24")
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--workers", type=int, default=2, help="cells run at once (one torch thread each)")
    parser.add_argument("--tables-only", action="store_true", help="rebuild the tables from the cache, run nothing")
    parser.add_argument("--no-readme", action="store_true", help="print the tables, leave README.md and docs alone")
    args = parser.parse_args()
    pairs, horizons = args.pairs.split(","), [int(h) for h in args.horizons.split(",")]
    models = args.models.split(",")
    grid = [Cell(f"{p}_h{h}", run_cell, (p, h, models)) for h in sorted(horizons, reverse=True) for p in pairs]
    started = time.perf_counter()
    if not args.tables_only:
        run_cells(grid, CACHE, args.workers)
    got = [load(CACHE, c.key) for c in grid]
    pending = [c.key for c, g in zip(grid, got, strict=True) if g is None]
    rows = pd.concat([g[0] for g in got if g is not None]) if len(pending) < len(grid) else pd.DataFrame()
    text, outside = table(rows, pairs, horizons)
    lo, hi = COVERAGE
    note = f"Folds with 80% coverage outside {lo}-{hi}: " + (
        "none" if not outside else f"{len(outside)}\n" + "\n".join(outside)
    )
    print(text + "\n\n" + note)
    print(f"\npending cells: {', '.join(pending) or 'none'}")
    load1 = os.getloadavg()
    print(
        f"{len(grid) - len(pending)} of {len(grid)} cells; {time.perf_counter() - started:.0f} s wall this run "
        f"(load {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f}); cells took {_cell_seconds(rows)}"
    )
    if not args.no_readme:
        replace_between(REPO / "README.md", START, END, text + "\n\n" + note)
        replace_between(REPO / "docs" / "forecasting.md", START, END, text + "\n\n" + note)


def _cell_seconds(rows: pd.DataFrame) -> str:
    """The finished cells' own wall times (each cell's rows carry it): their sum and the longest."""
    if rows.empty:
        return "nothing yet"
    per_cell = rows.groupby("cell")["cell_seconds"].first()
    return f"{per_cell.sum():.0f} s in all, the longest {per_cell.max():.0f} s (one worker's time each)"


if __name__ == "__main__":
    main()
