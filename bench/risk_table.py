"""Regenerate the risk table: every classical volatility model and the per-coin LSTM on every pair, h = 1 and 24.

    nice -n 10 .venv/bin/python bench/risk_table.py               # the whole grid (resumes from its cache)
    .venv/bin/python bench/risk_table.py --pairs BTC-USDT --horizons 24 --contestants lstm --no-readme
    .venv/bin/python bench/risk_table.py --tables-only             # rebuild the tables from the cache

Same engine and folds as `candlecast backtest --target volatility` (three folds over the last 30% of
each pair, each fold's model refit on every row before its test start, `backtest.refit: cutoff`).
Per pair and horizon: the best classical baseline (lowest mean QLIKE of the eight on the same
windows), every model's QLIKE over it with a one-sided Diebold-Mariano p-value (is the row better?),
its p-value in Hansen's model confidence set (90%: in the set when p >= 0.10; over the rows shown),
and the 99% VaR's hit rate with its Kupiec and Christoffersen p-values in each fold.

The LSTM is the per-coin model with small settings fixed here before any run (no sweep, not tuned):
hidden size 32, at most 3 epochs with patience 1, batch 512, one torch thread, the features below.
Each (pair, horizon, model group) is one cell of a resumable cache in bench/results/risk_cells/:
a killed run continues with the cells it had not finished. ``CONTESTANTS`` is the list of models
beside the baselines: one more entry adds one more row per pair and horizon.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cells import Cell, load, run_cells  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CACHE = REPO / "bench" / "results" / "risk_cells"
PAIRS = "BTC-USDT,ETH-USDT,BNB-USDT,SOL-USDT,XRP-USDT"
LONG = DATA / "long_2017_2022"  # Binance 1h from listing to 2022-10 (with the 2017-2019 outages), where present
BASELINES = ["naive_vol", "ewma", "garch", "gjr_garch", "har", "har_range", "harq", "har_j"]
TINY_LSTM = {"hidden_size": 32}
START, END = "<!-- risk-table:start -->", "<!-- risk-table:end -->"


def settings(horizon: int) -> dict:
    return {
        "target": "volatility",
        "features": {"horizon": horizon, "lookback": 48, "indicators": True, "higher_timeframes": ["4h", "1d"]},
        "split": {"test_folds": 3, "test_fraction": 0.3, "val_fraction": 0.1, "cal_fraction": 0.1},
        "train": {"max_epochs": 3, "patience": 1, "batch_size": 512, "threads": 1},
        "backtest": {"refit": "cutoff"},
    }


@dataclass(frozen=True)
class Contestant:
    """A model beside the baselines: its factory for a run config; ``pooled`` fits one model on every main pair.

    ``settings`` is merged into the run's settings for its cells (e.g. the features it needs).
    """

    factory: Callable  # (RunConfig) -> Forecaster
    pooled: bool = False
    settings: dict = field(default_factory=dict)


def tiny_lstm(cfg: Any) -> Any:
    """The per-coin LSTM with ``TINY_LSTM`` (a fresh dict each time: the forecaster keeps it)."""
    from candlecast.forecasting.neural import neural_forecaster

    return neural_forecaster(cfg, "lstm", dict(TINY_LSTM))


#: The pooled variance model (candlecast.forecasting.pooled): one network over the five main pairs with a
#: series embedding, log HAR-form realized inputs, residual on the log-HAR fitted on the same training rows.
POOLED = {"features": {"realized": ["rv", "garman_klass"]}, "multi_series": {"pooled_volatility": "residual"}}

#: The models compared with the baselines, one row each per pair and horizon; one more entry, one more row.
CONTESTANTS: dict[str, Contestant] = {
    "pooled_lstm": Contestant(tiny_lstm, pooled=True, settings=POOLED),
    "lstm": Contestant(tiny_lstm),
}


def source_path(pair: str) -> Path:
    """``BTC-USDT`` is the main 2020-2025 file; ``long:BTC-USDT`` the 2017-2022 one."""
    if pair.startswith("long:"):
        return LONG / f"binance_{pair[5:]}_1h.csv.gz"
    return DATA / "binance" / f"binance_{pair}_1h.csv.gz"


def run_cell(
    pairs: list[str], horizon: int, models: list[str], overrides: dict | None = None
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One backtest of ``models`` on ``pairs`` (one series, or every main pair for a pooled model).

    Returns per (pair, model, fold) the QLIKE and the 99% VaR's tests, and per (pair, model) the
    windows' origins and QLIKE losses, which the DM tests and the confidence set compare.
    """
    from candlecast.config import RunConfig
    from candlecast.features.compute import series_features
    from candlecast.features.windows import SeriesArrays
    from candlecast.forecasting.backtest import load_source
    from candlecast.forecasting.risk_metrics import qlike
    from candlecast.forecasting.splits import evaluation_folds_for
    from candlecast.forecasting.targets import Walk, target_of
    from candlecast.forecasting.walkforward import backtest
    from candlecast.schema import timeframe_ms

    cfg = RunConfig.model_validate(merged(settings(horizon), overrides or {}))
    series = []
    for pair in pairs:
        source = load_source(str(source_path(pair)))
        frame = series_features(source.candles, cfg.features, source.timeframe)
        arrays = SeriesArrays.from_frame(pair, frame, horizon)
        arrays.mark_windows(cfg.features.lookback, timeframe_ms(source.timeframe))
        series.append(arrays)
    folds = evaluation_folds_for(series[0].timestamps, cfg)
    target, walk = target_of(cfg), Walk.of(cfg)
    factories = {
        m: partial(CONTESTANTS[m].factory, cfg) if m in CONTESTANTS else partial(target.baseline, m, cfg)
        for m in models
    }
    result = backtest(target, factories, series, folds, walk)
    rows, arrays_out = [], {}
    for model in models:
        for fold, part in enumerate(result.forecasts[model]):
            for pair in pairs:
                scored = target.score(part.subset(part.series == pair), walk)
                rows.append({"pair": pair, "horizon": horizon, "model": model, "fold": fold} | _var_columns(scored))
        pooled = result.pooled(model)
        for pair in pairs:
            mine = pooled.subset(pooled.series == pair)
            arrays_out[f"{pair}|{model}|t"] = mine.timestamps
            arrays_out[f"{pair}|{model}|qlike"] = qlike(mine.realised, mine.forecast)
    return pd.DataFrame(rows), arrays_out


def merged(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` merged in, section by section."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def _var_columns(scored: dict[str, float]) -> dict[str, float]:
    keep = ("qlike", "windows", "var99_hit_rate", "var99_windows", "var99_kupiec_p", "var99_christoffersen_p")
    return {k: scored[k] for k in keep}


def cells(pairs: list[str], horizons: list[int], contestants: list[str]) -> list[Cell]:
    """The main pairs before the long ones, h = 24 first; the longest cells (the pooled ones) start first.

    Per horizon: the pooled cell, then the baselines of every main pair (cheap); then the per-coin
    contestants; then the long pairs' baselines and contestants. A pooled cell takes several times any
    other, so starting it first keeps the grid's wall time near its own.
    """
    main = [p for p in pairs if not p.startswith("long:")]
    per_coin = [name for name in contestants if not CONTESTANTS[name].pooled]
    out = []
    for h in sorted(horizons, reverse=True):
        out += [
            Cell(f"all_h{h}_{name}", run_cell, (main, h, [name], CONTESTANTS[name].settings))
            for name in contestants
            if CONTESTANTS[name].pooled and main
        ]
        out += [Cell(f"{_key(p)}_h{h}_baselines", run_cell, ([p], h, BASELINES)) for p in main]
    for group in (main, [p for p in pairs if p not in main]):
        if group is not main:
            out += [Cell(f"{_key(p)}_h{h}_baselines", run_cell, ([p], h, BASELINES)) for h in horizons for p in group]
        for h in sorted(horizons, reverse=True):
            for name in per_coin:
                extra = CONTESTANTS[name].settings
                out += [Cell(f"{_key(p)}_h{h}_{name}", run_cell, ([p], h, [name], extra)) for p in group]
    return out


def _key(pair: str) -> str:
    return pair.replace(":", "_")


def gather(grid: list[Cell]) -> tuple[pd.DataFrame, dict[str, np.ndarray], list[str]]:
    """Every finished cell's rows and arrays, and the keys still pending."""
    frames, arrays, pending = [], {}, []
    for cell in grid:
        got = load(CACHE, cell.key)
        if got is None:
            pending.append(cell.key)
            continue
        frames.append(got[0])
        horizon = cell.args[1]  # a cell's arrays are named pair|model|field; the table's carry the horizon too
        arrays.update({f"{k.split('|', 1)[0]}|{horizon}|{k.split('|', 1)[1]}": v for k, v in got[1].items()})
    return (pd.concat(frames) if frames else pd.DataFrame()), arrays, pending


def table(
    rows: pd.DataFrame, arrays: dict[str, np.ndarray], pairs: list[str], horizons: list[int]
) -> tuple[str, list[str]]:
    """The markdown table over the finished cells, and one verdict line per pair and horizon."""
    from candlecast.forecasting.metrics import dm_test
    from candlecast.forecasting.risk_metrics import confidence_set

    header = ["pair", "h", "model", "QLIKE", "/ best baseline", "DM p", "MCS p", "VaR99 hits", "Kupiec p per fold"]
    header += ["Christoffersen p per fold"]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---|" + "---:|" * (len(header) - 3)]
    verdicts = []
    for pair in pairs:
        for h in horizons:
            present = [m for m in [*BASELINES, *CONTESTANTS] if f"{pair}|{h}|{m}|t" in arrays]
            base = [m for m in present if m in BASELINES]
            if not base:
                continue
            losses = pd.DataFrame(
                {m: pd.Series(arrays[f"{pair}|{h}|{m}|qlike"], index=arrays[f"{pair}|{h}|{m}|t"]) for m in present}
            )
            losses = losses[np.isfinite(losses).all(axis=1)]  # the same windows for every model
            mean = losses.mean()
            best = str(mean[base].idxmin())
            mcs = confidence_set({m: losses[m].to_numpy() for m in present}, block_size=max(24, 2 * h))
            for m in present:
                d = (losses[m] - losses[best]).to_numpy()
                dm = "-" if m == best else f"{dm_test(d, h - 1, losses.index.to_numpy())[1]:.2f}"
                folds = _rows_h(rows, pair, m, h)
                hits = sum(r["var99_hit_rate"] * r["var99_windows"] for r in folds) / sum(
                    r["var99_windows"] for r in folds
                )
                name = f"**{m}** (best)" if m == best else m
                cells = [_label(pair), str(h), name, f"{mean[m]:.4f}", f"{mean[m] / mean[best]:.3f}", dm]
                cells += [f"{mcs[m]:.2f} {'in' if mcs[m] >= 0.10 else 'out'}", f"{hits:.4f}"]
                cells += [
                    " / ".join(f"{r[k]:.2f}" for r in folds) for k in ("var99_kupiec_p", "var99_christoffersen_p")
                ]
                lines.append("| " + " | ".join(cells) + " |")
            verdicts += [
                _verdict(pair, h, m, best, mean, losses, mcs, _rows_h(rows, pair, m, h))
                for m in present
                if m in CONTESTANTS
            ]
    return "\n".join(lines), verdicts


def _rows_h(rows: pd.DataFrame, pair: str, model: str, h: int) -> list[dict]:
    if rows.empty:
        return []
    sel = rows[(rows["pair"] == pair) & (rows["model"] == model) & (rows["horizon"] == h)]
    return sel.sort_values("fold").to_dict("records")


def _verdict(
    pair: str, h: int, m: str, best: str, mean: pd.Series, losses: pd.DataFrame, mcs: dict, folds: list
) -> str:
    """One line: beats / not significantly better than / loses to the best baseline, MCS, and its VaR99 tests."""
    from candlecast.forecasting.metrics import dm_test

    ratio = mean[m] / mean[best]
    p = dm_test((losses[m] - losses[best]).to_numpy(), h - 1, losses.index.to_numpy())[1]
    if ratio < 1:
        word = "beats" if p < 0.05 else "is not significantly better than"
    else:
        word = "loses to"
    where = "in" if mcs[m] >= 0.10 else "out of"
    failed = sum(r["var99_kupiec_p"] < 0.05 or r["var99_christoffersen_p"] < 0.05 for r in folds)
    var = "passes Kupiec and Christoffersen in every fold" if not failed else f"fails in {failed} of {len(folds)} folds"
    return (
        f"- {_label(pair)} h={h}: {m} {word} the best baseline {best} ({ratio:.3f}x, DM p {p:.2f}); "
        f"{where} the MCS; its 99% VaR {var}"
    )


def _label(pair: str) -> str:
    return pair[5:].replace("-", "/") + " 2017-22" if pair.startswith("long:") else pair.replace("-", "/")


def replace_between(path: Path, start: str, end: str, text: str) -> None:
    from candlecast.io import write_text

    body = path.read_text()
    if start not in body:
        raise SystemExit(f"{path.name} has no {start} ... {end} markers to replace")
    new = f"{start}\n{text}\n{end}"
    write_text(re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: new, body, flags=re.S), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    long_pairs = sorted(f"long:{p.name.split('_')[1]}" for p in LONG.glob("binance_*_1h.csv.gz"))
    parser.add_argument("--pairs", default=",".join([*PAIRS.split(","), *long_pairs]))
    parser.add_argument("--horizons", default="1,24")
    parser.add_argument("--contestants", default=",".join(CONTESTANTS), help="'' for the baselines only")
    parser.add_argument("--workers", type=int, default=2, help="cells run at once (one torch thread each)")
    parser.add_argument("--tables-only", action="store_true", help="rebuild the tables from the cache, run nothing")
    parser.add_argument("--no-readme", action="store_true", help="print the tables, leave README.md and docs alone")
    args = parser.parse_args()
    pairs, horizons = args.pairs.split(","), [int(h) for h in args.horizons.split(",")]
    contestants = [c for c in args.contestants.split(",") if c]
    grid = cells(pairs, horizons, contestants)
    started = time.perf_counter()
    if not args.tables_only:
        run_cells(grid, CACHE, args.workers)
    rows, arrays, pending = gather(grid)
    full, verdicts = table(rows, arrays, pairs, horizons)
    main_pairs = [p for p in pairs if not p.startswith("long:")]
    short, _ = table(rows, arrays, main_pairs, horizons)
    print(full + "\n\n" + "\n".join(verdicts))
    print(f"\npending cells: {', '.join(pending) or 'none'}")
    load = os.getloadavg()
    print(
        f"{len(grid) - len(pending)} of {len(grid)} cells; {time.perf_counter() - started:.0f} s wall this run "
        f"(load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}); cells took {_cell_seconds(rows)}"
    )
    if not args.no_readme:
        replace_between(REPO / "README.md", START, END, short)
        replace_between(
            REPO / "docs" / "risk.md",
            "<!-- risk-table-full:start -->",
            "<!-- risk-table-full:end -->",
            full + "\n\n" + "\n".join(verdicts),
        )


def _cell_seconds(rows: pd.DataFrame) -> str:
    """The finished cells' own wall times (each cell's rows carry it): their sum and the longest."""
    if rows.empty:
        return "nothing yet"
    per_cell = rows.groupby("cell")["cell_seconds"].first()
    return f"{per_cell.sum():.0f} s in all, the longest {per_cell.max():.0f} s (one worker's time each)"


if __name__ == "__main__":
    main()
