"""Fit cost of the volatility models: GARCH/GJR/HAR per fold, a 24-fold GARCH refit, the LSTM on this target.

    .venv/bin/python bench/risk_fit.py            # real BTC/USDT 1h (synthetic candles when ../shared is absent)

Prints seconds per fit on the full 5-year series (about 43,800 hourly candles) and the total of a
24-fold walk-forward GARCH refit (the target: under a minute on 2 cores), then the variance-head LSTM's
training throughput in windows per second next to the return head's, measured side by side.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from candlecast.config import FeatureConfig, TrainConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import series_features
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.neural import NeuralForecaster
from candlecast.forecasting.risk import variance_view
from candlecast.forecasting.risk_baselines import make_risk_baseline
from candlecast.forecasting.splits import walk_forward
from candlecast.forecasting.targets.returns import RETURNS
from candlecast.forecasting.targets.volatility import VOLATILITY

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance" / "binance_BTC-USDT_1h.csv.gz"
HOUR = 3_600_000
FC = FeatureConfig(lookback=48, horizon=24)


def series() -> SeriesArrays:
    if DATA.exists():
        candles, source = pd.read_csv(DATA), str(DATA)
    else:
        candles, source = synthetic_candles("BTC/USDT", 1_600_000_000_000 // HOUR * HOUR, 43_800, seed=1), "synthetic"
    print(f"data: {source}, {len(candles)} candles")
    out = SeriesArrays.from_frame("btc", series_features(candles, FC, "1h"), FC.horizon)
    out.mark_windows(FC.lookback, HOUR)
    return out


def main() -> None:
    s = series()
    view = variance_view(s)
    first, last = int(s.timestamps[0]), int(s.timestamps[-1])
    folds = walk_forward(first, last, HOUR, 72, 24, 400, 2000, 1000)
    for name in ("garch", "gjr_garch", "har", "ewma"):
        fold = folds[-1]
        start = time.perf_counter()
        model = make_risk_baseline(name, FC.horizon, HOUR)
        model.fit([view.until(fold.val.end)], fold)
        fitted = time.perf_counter() - start
        rows = view.sample_rows(fold.test)
        start = time.perf_counter()
        model.forecast(view.inputs_only(), rows)
        print(
            f"{name:10s} fit {fitted:6.2f} s on {np.sum(s.timestamps <= fold.train.end)} candles, "
            f"forecast {time.perf_counter() - start:5.2f} s for {len(rows)} windows"
        )
    start = time.perf_counter()
    for fold in folds:
        make_risk_baseline("garch", FC.horizon, HOUR).fit([view.until(fold.val.end)], fold)
    print(f"24-fold GARCH refit: {time.perf_counter() - start:.1f} s (target: under 60 s on 2 cores)")

    fold = walk_forward(first, last, HOUR, 72, 1, 2000, 2000, 1000)[0]
    cfg = TrainConfig(max_epochs=1, patience=1, threads=1)
    rates = {}
    for _ in range(2):  # interleaved rounds: the machine is shared
        for target, data, horizon, quantiles in (
            (RETURNS, s, FC.horizon, [0.1, 0.9]),
            (VOLATILITY, view, 1, []),
        ):
            model = NeuralForecaster("lstm", {}, FC.lookback, horizon, cfg, quantiles, target=target)
            start = time.perf_counter()
            model.fit([data.until(fold.val.end)], fold)
            assert model.result is not None
            rate = model.result.n_train * model.result.epochs / (time.perf_counter() - start)
            rates.setdefault(target.bundle_key, []).append(rate)
    for target, values in rates.items():
        print(f"lstm {target:8s} head: {np.median(values):7.0f} training windows/s (1 thread, median of 2 rounds)")
    print(f"variance / returns head throughput: {np.median(rates['variance']) / np.median(rates['returns']):.2f}")


if __name__ == "__main__":
    main()
