"""Per-trial cost of tracking (MLflow child run + Optuna storage) next to the training it tracks.

One run, side by side on this machine: the median time of one sweep trial's training (a real
NeuralForecaster fit on synthetic candles, ``--epochs`` epochs) and the median time of the exact
tracking calls the sweep makes per trial (create the child run, log params, log per-epoch metrics,
tag and terminate it; ask, report per epoch and tell on an Optuna sqlite study).

    .venv/bin/python bench/tracking_overhead.py [--trials 10] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="candlecast-bench-"))
    os.environ["CANDLECAST_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    import optuna
    from mlflow.entities import Metric, Param

    from candlecast.config import RunConfig
    from candlecast.devtools.synthetic import synthetic_candles
    from candlecast.features.compute import series_features
    from candlecast.features.windows import SeriesArrays
    from candlecast.forecasting.neural import neural_forecaster
    from candlecast.forecasting.splits import make_plan
    from candlecast.registry import tracking
    from candlecast.settings import Settings

    cfg = RunConfig.model_validate(
        {"features": {"lookback": 48, "horizon": 24}, "train": {"max_epochs": args.epochs, "threads": 2}}
    )
    candles = synthetic_candles("BTC/USDT", 1_704_067_200_000, 24 * 365, seed=1)
    frame = series_features(candles, cfg.features, "1h")
    series = [SeriesArrays.from_frame("BTC/USDT", frame, cfg.features.horizon)]
    series[0].mark_windows(cfg.features.lookback, 3_600_000)
    fold = make_plan(series, cfg).folds[0]

    train_s = []
    for _ in range(min(args.trials, 3)):  # training dominates: 3 samples are plenty
        start = time.perf_counter()
        neural_forecaster(cfg, "lstm", {"hidden_size": 32}, max_epochs=args.epochs).fit(series, fold)
        train_s.append(time.perf_counter() - start)

    settings = Settings()
    client = tracking.client(settings)
    parent = tracking.start_parent_run(settings, "bench-tracking", "bench", {})
    experiment = client.get_run(parent).info.experiment_id
    study = optuna.create_study(study_name="bench", storage=settings.optuna_url, load_if_exists=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    mlflow_s, optuna_s = [], []
    for i in range(args.trials):
        start = time.perf_counter()
        trial = study.ask()
        trial.suggest_int("hidden_size", 16, 64)
        for epoch in range(args.epochs):
            trial.report(1.0 / (epoch + 1), epoch)
            trial.should_prune()
        study.tell(trial, 1.0)
        optuna_s.append(time.perf_counter() - start)

        start = time.perf_counter()
        run = client.create_run(experiment, run_name=f"trial-{i}", tags={"mlflow.parentRunId": parent})
        client.log_batch(run.info.run_id, params=[Param(k, "1") for k in ("hidden_size", "num_layers", "lr")])
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, 0.5, now, e) for e in range(args.epochs) for k in ("val_loss", "train_loss")],
        )
        client.log_metric(run.info.run_id, "rmse_ratio", 1.0)
        client.set_tag(run.info.run_id, "optuna.state", "COMPLETE")
        client.set_terminated(run.info.run_id, "FINISHED")
        mlflow_s.append(time.perf_counter() - start)

    train, ml, op = (statistics.median(x) for x in (train_s, mlflow_s, optuna_s))
    print(
        f"one trial: {len(series[0].sample_rows(fold.train))} training windows, {args.epochs} epochs, state in {home}"
    )
    print(f"{'part':36s} {'median s':>9s} {'share of trial':>15s}")
    for name, value in (
        ("training (NeuralForecaster.fit)", train),
        ("MLflow child run (sqlite)", ml),
        ("Optuna ask/report/tell (sqlite)", op),
    ):
        print(f"{name:36s} {value:9.3f} {value / (train + ml + op):15.1%}")
    print(f"tracking overhead per trial: {(ml + op) * 1000:.0f} ms = {(ml + op) / train:.1%} of the training time")


if __name__ == "__main__":
    main()
