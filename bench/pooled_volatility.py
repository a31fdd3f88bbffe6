"""The pooled variance model against the per-coin LSTM and the HAR family, on the same folds and windows.

    .venv/bin/python bench/pooled_volatility.py                        # BTC and ETH, h = 24 and 1
    .venv/bin/python bench/pooled_volatility.py --pairs BTC-USDT,ETH-USDT,BNB-USDT,SOL-USDT,XRP-USDT
    .venv/bin/python bench/pooled_volatility.py --market demo          # the demo's synthetic market instead

Per pair and horizon: log-HAR, HAR-range and HARQ and the per-coin LSTM (`candlecast backtest
--target volatility` on the pair alone), and the pooled LSTM (one network over every listed pair with a
series embedding, residual on log-HAR: candlecast.forecasting.multi_series.pooled_volatility_forecasts)
on the same folds. QLIKE, its ratio to the best classical model's (lowest QLIKE of the three) and the
one-sided Diebold-Mariano p-value (is the row's model better?) on the windows both forecast. Settings are
fixed here, not tuned: default hyperparameters, no sweep, the last --days of each pair's hourly candles.
``--market demo`` runs the same on the demo's synthetic market (configs/demo_risk.yaml's exchange: two
years of BTC and ETH with the shared volatility regime), generated in memory.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CLASSICAL = ("har", "har_range", "harq")


def settings(horizon: int) -> dict:
    return {
        "target": "volatility",
        "features": {"horizon": horizon, "lookback": 24, "realized": ["rv", "garman_klass"]},
        "split": {"test_folds": 3, "test_fraction": 0.3, "val_fraction": 0.1, "cal_fraction": 0.1},
        "train": {"max_epochs": 4, "patience": 2, "threads": 1},
    }


def real_market(pairs: list[str], days: int) -> dict:
    """The last ``days`` of each pair's hourly Binance candles, as backtest sources."""
    from candlecast.forecasting.backtest import load_source

    sources = {}
    for pair in pairs:
        source = load_source(str(DATA / "binance" / f"binance_{pair}_1h.csv.gz"))
        keep = source.candles["timestamp"] > source.candles["timestamp"].iloc[-1] - days * 86_400_000
        sources[pair] = replace(source, candles=source.candles[keep].reset_index(drop=True))
    return sources


def demo_market() -> dict:
    """The demo's synthetic candles (its exchange block: start, end, seed, signal and volatility regime)."""
    import tempfile

    from candlecast.config import RunConfig
    from candlecast.devtools.synthetic import Signal, synthetic_candles
    from candlecast.forecasting.backtest import Source

    cfg = RunConfig.from_yaml(REPO / "configs" / "demo_risk.yaml", home=Path(tempfile.gettempdir()))
    ex = cfg.exchange
    assert ex.synthetic_end is not None  # the demo's market is pinned
    start, hour = int(ex.synthetic_start.timestamp() * 1000), 3_600_000
    n = (int(ex.synthetic_end.timestamp() * 1000) - start) // hour + 1
    signal = Signal(ex.synthetic_ar_phi, ex.synthetic_hour_mean, ex.synthetic_vol_regime)
    out = {}
    for symbol in cfg.data.symbols:
        pair = symbol.replace("/", "-")
        candles = synthetic_candles(symbol, start, n, "1h", ex.seed, signal=signal)
        out[pair] = Source(f"demo_{pair}_1h", symbol, "1h", candles)
    return out


def run(sources: dict, horizon: int) -> tuple[list[str], float]:
    """Every model on every pair at one horizon: the table's rows and the wall time."""
    from candlecast.config import RunConfig
    from candlecast.forecasting.backtest import run_backtest
    from candlecast.forecasting.multi_series import pooled_volatility_forecasts

    started = time.perf_counter()
    cfg = RunConfig.model_validate(settings(horizon))
    per_coin = {p: run_backtest(s, [*CLASSICAL, "lstm"], cfg)[0] for p, s in sources.items()}
    pooled = pooled_volatility_forecasts(cfg, {s.name: s.candles for s in sources.values()})
    rows = []
    for pair, result in per_coin.items():
        models = {m: result.pooled(m) for m in (*CLASSICAL, "lstm")}
        models["pooled"] = pooled[sources[pair].name]
        rows += table_rows(pair, horizon, models, cfg.backtest.stride)
    return rows, time.perf_counter() - started


def table_rows(pair: str, horizon: int, models: dict, stride: int) -> list[str]:
    """One row per model: QLIKE, ratio and DM p against the best classical model on the shared windows."""
    from candlecast.forecasting.risk import compare_risk
    from candlecast.forecasting.risk_metrics import qlike

    common = set.intersection(*(set(f.timestamps.tolist()) for f in models.values()))
    aligned = {m: f.subset(np.isin(f.timestamps, sorted(common))) for m, f in models.items()}
    score = {m: float(np.nanmean(qlike(f.realised, f.forecast))) for m, f in aligned.items()}
    best = min(CLASSICAL, key=score.__getitem__)
    lines = []
    for m, f in aligned.items():
        p = float("nan") if m == best else compare_risk(f, aligned[best], horizon, stride)[1]
        cells = [pair.replace("-", "/"), str(horizon), m, f"{score[m]:.4f}", f"{score[m] / score[best]:.3f}"]
        cells += ["best" if m == best else f"{p:.3f}", str(len(common))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default="BTC-USDT,ETH-USDT")
    parser.add_argument("--horizons", default="24,1")
    parser.add_argument("--days", type=int, default=730, help="the last this many days of each pair")
    parser.add_argument("--market", choices=["real", "demo"], default="real")
    args = parser.parse_args()
    sources = demo_market() if args.market == "demo" else real_market(args.pairs.split(","), args.days)
    header = ["pair", "h", "model", "QLIKE", "/ best classical", "DM p", "windows"]
    table = ["| " + " | ".join(header) + " |", "|---|---:|---|" + "---:|" * (len(header) - 3)]
    started, load = time.perf_counter(), os.getloadavg()[0]
    for horizon in map(int, args.horizons.split(",")):
        rows, seconds = run(sources, horizon)
        table += rows
        print(f"h={horizon}: {seconds:.0f} s", flush=True)
    print("\n".join(table))
    wall = time.perf_counter() - started
    print(f"\n{wall:.0f} s wall; load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
