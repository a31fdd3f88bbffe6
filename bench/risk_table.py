"""Regenerate the README's real-data risk table: the LSTM's variance head against EWMA, GARCH, GJR and HAR.

    .venv/bin/python bench/risk_table.py     # baselines on every shared pair at h=1 and 24; the LSTM on BTC and
                                             # ETH at h=24, without and with the sentiment index
    .venv/bin/python bench/risk_table.py --pairs BTC-USDT --horizons 24 --neural-pairs BTC-USDT

Same engine, folds and windows as `candlecast backtest --target volatility`; QLIKE ratios to GARCH
and HAR with one-sided Diebold-Mariano p-values (is the row's model better?), the 99% VaR's hit rate
and its Kupiec and Christoffersen p-values per fold. The classical models read returns only; the LSTM (default
hyperparameters, no sweep: say so next to the numbers) runs where ``--neural-pairs`` and
``--neural-horizons`` say, once without and once with the daily Crypto Fear & Greed Index joined point in
time (published around 00:00 UTC; used from 01:00). Settings are fixed here, not tuned.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import re
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PAIRS = "BTC-USDT,ETH-USDT,BNB-USDT,SOL-USDT,XRP-USDT"
BASELINES = "naive_vol,ewma,garch,gjr_garch,har"
SENTIMENT = {"path": str(DATA / "exogenous" / "alternative_me_fear_greed_1d.csv.gz"), "delay_ms": 3_600_000}
START, END = "<!-- risk-table:start -->", "<!-- risk-table:end -->"


def settings(horizon: int, sentiment: bool) -> dict:
    return {
        "target": "volatility",
        "features": {
            "horizon": horizon,
            "lookback": 48,
            "indicators": True,
            "higher_timeframes": ["4h", "1d"],
            "exogenous": [SENTIMENT] if sentiment else [],
        },
        "split": {"test_folds": 3, "test_fraction": 0.3, "val_fraction": 0.1, "cal_fraction": 0.1},
        "train": {"max_epochs": 5, "threads": 1},
    }


def run(pair: str, horizon: int, sentiment: bool, models: str, out: Path) -> str:
    """One backtest: every model in ``models`` on one pair and horizon; returns the name of its tables."""
    from candlecast.config import RunConfig
    from candlecast.forecasting.backtest import load_source, run_backtest, write_tables

    cfg = RunConfig.model_validate(settings(horizon, sentiment))
    source = load_source(str(DATA / "binance" / f"binance_{pair}_1h.csv.gz"))
    name = f"risk_{pair}_h{horizon}{'_fng' if sentiment else ''}"
    started = time.perf_counter()
    result, folds = run_backtest(source, models.split(","), cfg)
    write_tables(result, out, name, f"{name}: {len(folds)} folds, {time.perf_counter() - started:.0f} s")
    return name


def table(names: list[str], out: Path) -> str:
    header = ["pair", "h", "sentiment", "model", "QLIKE / GARCH", "DM p", "QLIKE / HAR", "DM p", "VaR99 hits"]
    header += ["Kupiec p (min over folds)", "Christoffersen p (min)"]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---|---|" + "---:|" * (len(header) - 4)]
    for name in names:
        summary = pd.read_csv(out / f"{name}_volatility_summary.csv", index_col="model")
        per_fold = pd.read_csv(out / f"{name}_volatility_per_fold.csv")
        _, pair, h, *rest = name.split("_")
        for model, row in summary.iterrows():
            if rest and model != "lstm":  # the references ran again only to compare with; shown once above
                continue
            folds = per_fold[per_fold["model"] == model]
            cells = [
                pair.replace("-", "/"),
                h[1:],
                "with" if rest else "without",
                str(model),
                _num(row.get("qlike_ratio_garch")),
                _num(row.get("dm_p_garch"), 2),
                _num(row.get("qlike_ratio_har")),
                _num(row.get("dm_p_har"), 2),
                f"{row['var99_hit_rate']:.3f}",
                f"{folds['var99_kupiec_p'].min():.2f}",
                f"{folds['var99_christoffersen_p'].min():.2f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default=PAIRS)
    parser.add_argument("--horizons", default="1,24")
    parser.add_argument("--neural-pairs", default="BTC-USDT,ETH-USDT")
    parser.add_argument("--neural-horizons", default="24")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results")
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--tables-only", action="store_true", help="rebuild the table from docs/results, run nothing")
    args = parser.parse_args()
    neural = {(p, int(h)) for p in args.neural_pairs.split(",") for h in args.neural_horizons.split(",")}
    jobs = []
    for pair in args.pairs.split(","):
        for h in map(int, args.horizons.split(",")):
            with_lstm = (pair, h) in neural
            jobs.append((pair, h, False, BASELINES + (",lstm" if with_lstm else ""), args.out))
            if with_lstm:
                jobs.append((pair, h, True, "garch,har,lstm", args.out))  # the references, then the LSTM with sentiment
    started = time.perf_counter()
    if args.tables_only:
        names = [f"risk_{p}_h{h}{'_fng' if fng else ''}" for p, h, fng, _, _ in jobs]
    else:
        with mp.get_context("spawn").Pool(2) as pool:
            names = pool.starmap(run, jobs)
    text = table(names, args.out)
    print(text)
    print(f"\n{len(jobs)} backtests in {time.perf_counter() - started:.0f} s wall")
    if not args.no_readme:
        readme = REPO / "README.md"
        body = readme.read_text()
        if START not in body:
            raise SystemExit(f"README.md has no {START} ... {END} markers to replace")
        new = f"{START}\n{text}\n{END}"
        readme.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: new, body, flags=re.S))


if __name__ == "__main__":
    main()
