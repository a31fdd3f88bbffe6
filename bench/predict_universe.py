"""A 100-symbol universe forecast by one global model in one call, the model load from the registry included.

Builds, in a temporary CANDLECAST_HOME: 100 seeded synthetic hourly series in the candle store, one
global LSTM fitted for one epoch on all of them (series id one-hot, per-series scaling; quality is
irrelevant to the cost), logged as the project's pyfunc, registered and aliased @champion. Then, in
interleaved rounds, it times:

    cold          a fresh interpreter: import, load models:/NAME@champion, predict_many on 100 series
    load+many     in this process: load the champion from the registry, then predict_many (one call)
    many          predict_many alone on the loaded bundle (features of 100 series, one forward pass)
    loop          the same 100 forecasts one series at a time (ModelBundle.predict), as before
    chunk         predict_chunk: read 100 series from the store, forecast, write 100 prediction files

    .venv/bin/python bench/predict_universe.py [--symbols 100] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

START = 1_704_067_200_000
HOUR = 3_600_000
NAME = "candlecast-universe"


def symbols(n: int) -> list[str]:
    return [f"S{i:03d}/USDT" for i in range(n)]


def build(args: argparse.Namespace, home: Path) -> float:
    """Candles in the store, a global model fitted and registered @champion; returns the seconds it took."""
    t0 = time.perf_counter()
    os.environ["CANDLECAST_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    import mlflow

    from candlecast.data.candle_store import CandleStore
    from candlecast.devtools.synthetic import synthetic_candles
    from candlecast.features.compute import series_features
    from candlecast.features.windows import SeriesArrays
    from candlecast.forecasting.calibration import Calibration
    from candlecast.forecasting.neural import neural_forecaster
    from candlecast.registry import aliases, tracking
    from candlecast.registry.bundle import BundleSpec, ModelBundle
    from candlecast.schema import Range
    from candlecast.settings import Settings

    cfg = config(args)
    settings = Settings()
    store = CandleStore(settings.candles_dir)
    series = []
    for symbol, key in zip(cfg.data.symbols, cfg.series, strict=True):
        candles = synthetic_candles(symbol, START, args.candles, seed=3)
        store.upsert(key, candles)
        s = SeriesArrays.from_frame(symbol, series_features(candles, cfg.features, "1h"), cfg.features.horizon)
        s.mark_windows(cfg.features.lookback, HOUR)
        series.append(s)
    model = neural_forecaster(cfg, "lstm", {})
    model.refit(series, Range(START, START + args.candles * HOUR), epochs=1)
    rows = [s.sample_rows(Range(START, START + args.candles * HOUR)) for s in series]
    pcs = [model.forecast(s.inputs_only(), r[-50:]) for s, r in zip(series, rows, strict=True)]
    calibration = Calibration.fit(  # in-sample residuals: a cost bench, not a quality claim
        np.concatenate([s.targets[r[-50:]] for s, r in zip(series, rows, strict=True)]),
        np.concatenate([p for p, _ in pcs]),
        np.concatenate([b for _, b in pcs]),
        cfg.predict.interval,
    )
    spec = BundleSpec(
        model_name="lstm",
        hparams={},
        features=cfg.features.model_dump(mode="json"),
        timeframe="1h",
        scaler=asdict(model.result.scaler),
        columns=series[0].columns,
        quantiles=model.quantiles,
        calibration=asdict(calibration),
        train_end=START + args.candles * HOUR,
    )
    bundle = ModelBundle(spec, model.result.model)
    example = store.read(cfg.series[0]).tail(spec.min_candles).assign(symbol=cfg.data.symbols[0])
    client = tracking.client(settings)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_experiment(experiment_id=tracking.experiment_id(settings, "bench-universe"))
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
        saved = bundle.save(Path(tmp) / "bundle")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(aliases._PYFUNC_ENTRY),
            artifacts={"bundle": str(saved)},
            signature=aliases._signature(example.drop(columns="symbol"), bundle.predict_many(example)),
            input_example=example,
            pip_requirements=[],
        )
    version = aliases.register(client, NAME, info.model_uri, run.info.run_id, {})
    client.set_registered_model_alias(NAME, "champion", version)
    os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    return time.perf_counter() - t0


def config(args: argparse.Namespace):
    from candlecast.config import RunConfig

    return RunConfig.model_validate(
        {
            "data": {"symbols": symbols(args.symbols)},
            "train": {"threads": args.threads, "batch_size": 512},
            "promotion": {"model_name": NAME},
            "predict": {"max_model_age_days": None},
            "multi_series": {"global_model": True, "predict_chunk": args.symbols},
        }
    )


COLD = """
import json, sys, time
t0 = time.perf_counter()
import torch
torch.set_num_threads({threads})
import pandas as pd
from candlecast.registry import aliases, tracking
from candlecast.registry.loading import load_version
from candlecast.settings import Settings
t1 = time.perf_counter()
client = tracking.client(Settings())
bundle = load_version(client, "{name}", aliases.alias_version(client, "{name}", aliases.CHAMPION))
t2 = time.perf_counter()
out = bundle.predict_many(pd.read_parquet("{frame}"))
t3 = time.perf_counter()
assert out["symbol"].nunique() == {n}
print(json.dumps({{"import": t1 - t0, "load": t2 - t1, "predict_many": t3 - t2}}))
"""


def cold(args: argparse.Namespace, frame_path: Path) -> dict[str, float]:
    code = COLD.format(threads=args.threads, name=NAME, frame=frame_path, n=args.symbols)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_champion_bundle(name: str):
    """The @champion's bundle, as batch prediction loads it (the lean runtime when it carries its export)."""
    from candlecast.registry import aliases, tracking
    from candlecast.registry.loading import load_version
    from candlecast.settings import Settings

    client = tracking.client(Settings())
    return load_version(client, name, aliases.alias_version(client, name, aliases.CHAMPION))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--candles", type=int, default=600, help="candles per series in the store")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.threads)
    home = Path(tempfile.mkdtemp(prefix="candlecast-universe-"))
    built = build(args, home)
    from candlecast.data.candle_store import CandleStore
    from candlecast.registry.batch_prediction import predict_chunk
    from candlecast.settings import Settings

    cfg, settings = config(args), Settings()
    bundle = load_champion_bundle(NAME)
    store = CandleStore(settings.candles_dir)
    tails = {k.symbol: store.read(k).tail(bundle.spec.min_candles + 1) for k in cfg.series}
    frame = pd.concat([c.assign(symbol=s) for s, c in tails.items()], ignore_index=True)
    frame_path = home / "request.parquet"
    frame.to_parquet(frame_path)
    print(
        f"{args.symbols} synthetic 1h series, {bundle.spec.min_candles + 1} candles each in the request "
        f"({len(frame)} rows); global LSTM, {len(bundle.spec.columns)} features + {args.symbols} ids; "
        f"built and registered in {built:.0f} s; torch threads {args.threads}; {args.rounds} interleaved rounds"
    )
    times: dict[str, list[float]] = {}

    def timed(label: str, fn) -> None:
        t = time.perf_counter()
        fn()
        times.setdefault(label, []).append(time.perf_counter() - t)

    for r in range(args.rounds):
        for part, seconds in cold(args, frame_path).items():
            times.setdefault(f"cold: {part}", []).append(seconds)
        timed("load+many", lambda: load_champion_bundle(NAME).predict_many(frame))
        timed("many", lambda: bundle.predict_many(frame))
        timed("loop", lambda: [bundle.predict(c, symbol=s) for s, c in tails.items()])
        timed("chunk", lambda: predict_chunk(settings, cfg, cfg.data.symbols))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    many = bundle.predict_many(frame)
    loop = pd.concat([bundle.predict(c, symbol=s).assign(symbol=s) for s, c in tails.items()], ignore_index=True)
    gap = float(np.max(np.abs(many["forecast_log_return"].to_numpy() - loop["forecast_log_return"].to_numpy())))
    print(f"\n{'what':28s} {'median s':>9s} {'min s':>7s} {'max s':>7s}")
    for label, values in times.items():
        print(f"{label:28s} {statistics.median(values):9.3f} {min(values):7.3f} {max(values):7.3f}")
    ratio = statistics.median(times["loop"]) / statistics.median(times["many"])
    print(f"\none call for {args.symbols} series is {ratio:.1f}x the one-at-a-time loop (medians, same rounds)")
    print(f"largest difference between the batched and one-at-a-time log-return forecasts: {gap:.2e}")


if __name__ == "__main__":
    main()
