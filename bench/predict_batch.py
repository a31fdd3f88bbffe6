"""Batch prediction for many series from the registry's champion, the model load included.

Trains one small champion on two synthetic series (one sweep trial, one epoch: the model's quality
does not matter here), stores ``--series`` synthetic hourly series, then times the predict stage
as the scheduled flow runs it: load models:/<name>@champion once, forecast every series, write the
prediction store. Prints the model load and the per-series cost.

    .venv/bin/python bench/predict_batch.py [--series 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="candlecast-bench-"))
    os.environ["CANDLECAST_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    import mlflow

    from candlecast.config import RunConfig
    from candlecast.data import ingest
    from candlecast.data.candle_store import CandleStore
    from candlecast.devtools.synthetic import synthetic_candles
    from candlecast.features.compute import build_feature_file
    from candlecast.features.windows import data_lineage, load_series
    from candlecast.registry import aliases, tracking
    from candlecast.registry.evaluation import evaluate_best
    from candlecast.registry.prediction import predict_champion
    from candlecast.registry.sweep import run_sweep
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings
    from candlecast.tasks.endpoint import exchange_endpoint

    base = {
        "name": "bench-predict",
        "data": {"history_days": 120},
        "features": {"lookback": 48, "horizon": 24},
        "sweep": {"n_trials": 1, "max_epochs": 1},
        "train": {"max_epochs": 1},
        "backtest": {"baselines": ["naive"]},
        "promotion": {"model_name": "bench-predict"},
    }
    cfg, settings = RunConfig.model_validate(base), Settings()
    started = time.perf_counter()
    with exchange_endpoint(cfg) as endpoint:
        for s in cfg.series:
            staged = ingest.fetch_batch(settings, cfg, s, endpoint)
            ingest.store_batch(settings, s, staged)
    paths = {s.slug: build_feature_file(settings, cfg, s) for s in cfg.series}
    arrays = load_series(paths, cfg.features.lookback, cfg.features.horizon, cfg.data.timeframe)
    run_id = tracking.start_parent_run(settings, cfg.experiment_name, "bench", data_lineage(paths))
    evaluation = evaluate_best(settings, cfg, arrays, run_sweep(settings, cfg, paths, run_id))
    client = tracking.client(settings)
    version = aliases.register(client, "bench-predict", evaluation.model_uri, run_id, {})
    client.set_registered_model_alias("bench-predict", "champion", version)
    print(f"setup (ingest, 1-trial sweep, evaluation, register): {time.perf_counter() - started:.1f} s")

    store = CandleStore(settings.candles_dir)
    symbols = [f"S{i:03d}/USDT" for i in range(args.series)]
    for symbol in symbols:
        store.upsert(SeriesKey("binance", symbol, "1h"), synthetic_candles(symbol, 1_704_067_200_000, 500, seed=3))
    many = RunConfig.model_validate(base | {"data": {"symbols": symbols}})

    start = time.perf_counter()
    mlflow.pyfunc.load_model("models:/bench-predict@champion")
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    outcome = predict_champion(settings, many)
    total_s = time.perf_counter() - start
    assert len(outcome.files) == args.series
    print(f"model load alone (models:/bench-predict@champion): {load_s:.2f} s")
    print(f"predict stage for {args.series} series incl. load and writes: {total_s:.2f} s")
    print(f"per series after the load: {(total_s - load_s) / args.series * 1000:.1f} ms")


if __name__ == "__main__":
    main()
