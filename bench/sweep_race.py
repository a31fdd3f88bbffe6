"""Sweep to quality: candlecast's Optuna sweep against NeuralForecast's AutoLSTM, best loss against wall time.

Both search a 5-dimensional LSTM space of the same shape (hidden size {16, 32, 64}, layers 1-2, dropout
0-0.3, learning rate 3e-4..1e-2 log, weight decay 1e-6..1e-2 log; window 64, batch 256, AdamW), with
seeded TPE, the same trial budget, at most ``--max-epochs`` epochs a trial with early stopping
(patience 2), on the same real BTC/USDT 1h candles, and both are scored on the *same windows*: the
test block of candlecast's sweep fold, as an RMSE ratio to the naive forecast (no change) over all 24
steps. NeuralForecast validates on exactly those windows (``val_size``), so its trial value (MSE of
log close, on the original scale) turns into that ratio with the naive RMSE of those windows.

candlecast runs as a user would run it fast: ``run_sweep`` with median pruning and ``--workers``
single-thread trial processes on a fresh sqlite study, MLflow child runs included. NeuralForecast
runs as its docs show: ``AutoLSTM(backend="optuna")`` in one process with every core. Each side
trains on its own protocol: candlecast fits on the fold's training block and early-stops on its
early-stopping block; NeuralForecast trains on everything before the scored windows (more data,
and it early-stops on the scored windows themselves), an advantage to the peer noted in the output.

    ../bench-venv/bin/python bench/sweep_race.py [--trials 12] [--workers 2] [--candles 6000] [--png PATH]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance" / "binance_BTC-USDT_1h.csv.gz"
LOOKBACK, HORIZON, BATCH, PATIENCE = 64, 24, 256, 2


def run_config(args: argparse.Namespace):
    from candlecast.config import RunConfig

    return RunConfig.model_validate(
        {
            "name": "race",
            "features": {"lookback": LOOKBACK, "horizon": HORIZON},
            "split": {"n_folds": 1},
            "train": {"batch_size": BATCH, "patience": PATIENCE, "seed": 42},
            "sweep": {"model": "lstm", "n_trials": args.trials, "max_epochs": args.max_epochs, "workers": args.workers},
        }
    )


def prepare(args: argparse.Namespace, home: Path):
    """Feature file, series, the sweep fold and the scored windows' naive RMSE."""
    from candlecast.features.compute import series_features
    from candlecast.features.windows import load_series
    from candlecast.forecasting.splits import make_plan

    cfg = run_config(args)
    if DATA.exists():
        candles, source = pd.read_csv(DATA).tail(args.candles).reset_index(drop=True), f"real {DATA.name}"
    else:
        from candlecast.devtools.synthetic import synthetic_candles

        candles, source = synthetic_candles("BTC/USDT", 1_704_067_200_000, args.candles, seed=1), "SYNTHETIC candles"
    frame = series_features(candles, cfg.features, "1h")
    path = home / "features" / "BTC-USDT.parquet"
    path.parent.mkdir(parents=True)
    frame.to_parquet(path)
    paths = {"BTC/USDT": str(path)}
    series = load_series(paths, LOOKBACK, HORIZON, "1h")[0]
    fold = make_plan([series], cfg).folds[0]
    scored = series.sample_rows(fold.test)
    naive_rmse = float(np.sqrt(np.mean(series.targets[scored] ** 2)))
    return cfg, frame, paths, series, fold, scored, naive_rmse, source


def _clocks() -> tuple[float, float]:
    """Wall seconds and CPU seconds of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def race_candlecast(cfg, paths: dict[str, str]) -> tuple[list[tuple[float, float]], float, float]:
    """run_sweep as the pipeline calls it; returns (seconds from start, trial value) of finished trials."""
    import optuna

    from candlecast.registry import tracking
    from candlecast.registry.sweep import _storage, run_sweep
    from candlecast.settings import Settings

    settings = Settings()
    parent = tracking.start_parent_run(settings, "bench-race", "race", {})
    started, (wall0, cpu0) = datetime.now(), _clocks()
    outcome = run_sweep(settings, cfg, paths, parent)
    wall1, cpu1 = _clocks()
    study = optuna.load_study(study_name=outcome.study_name, storage=_storage(settings))
    done = [t for t in study.trials if t.datetime_complete is not None]
    points = sorted(
        ((t.datetime_complete - started).total_seconds(), t.value if t.value is not None else math.inf) for t in done
    )
    states = [t.state.name for t in done]
    print(f"candlecast: {states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, {len(done)} finished")
    spans = [
        ((t.datetime_start - started).total_seconds(), (t.datetime_complete - started).total_seconds()) for t in done
    ]
    both = both_busy_from(spans)
    print(
        "candlecast: first trial started at "
        f"{min(s for s, _ in spans):.1f} s; two trials first ran at once from "
        + (f"{both:.1f} s (the helper worker's first trial)" if both is not None else "never")
    )
    return points, wall1 - wall0, cpu1 - cpu0


def both_busy_from(spans: list[tuple[float, float]]) -> float | None:
    """The first moment two trials ran at the same time: when the second worker process began working."""
    starts = sorted(s for s, _ in spans)
    for start in starts:
        if sum(1 for s, e in spans if s < start < e) >= 1:
            return start
    return None


def nf_search_space(trial, exog: list[str], steps_per_epoch: int, max_epochs: int) -> dict:
    """The LSTM space of candlecast in NeuralForecast's names, with the fixed settings of the race."""
    import torch

    return {
        "input_size": LOOKBACK,
        "encoder_hidden_size": trial.suggest_categorical("hidden_size", [16, 32, 64]),
        "encoder_n_layers": trial.suggest_int("num_layers", 1, 2),
        "encoder_dropout": trial.suggest_float("dropout", 0.0, 0.3),
        "learning_rate": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "optimizer": torch.optim.AdamW,
        "optimizer_kwargs": {"weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)},
        "decoder_layers": 1,
        "hist_exog_list": exog,
        "max_steps": steps_per_epoch * max_epochs,
        "val_check_steps": steps_per_epoch,
        "early_stop_patience_steps": PATIENCE,
        "batch_size": 1,
        "windows_batch_size": BATCH,
        "inference_windows_batch_size": 1024,
        "scaler_type": "standard",
        "random_seed": 42,
        "accelerator": "cpu",
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        "enable_checkpointing": False,
    }


def race_neuralforecast(args, frame: pd.DataFrame, series, fold, scored: np.ndarray, naive_rmse: float):
    """AutoLSTM on y = log close plus the same input features, validated on the scored windows."""
    import optuna
    from neuralforecast import NeuralForecast
    from neuralforecast.auto import AutoLSTM
    from neuralforecast.losses.pytorch import MSE

    exog = list(series.columns)
    first = int(np.flatnonzero(np.isfinite(series.features).all(axis=1))[0])
    last = int(scored[-1]) + HORIZON
    df = frame.iloc[first : last + 1][exog].copy()
    df.insert(0, "y", np.log(frame["close"].iloc[first : last + 1].to_numpy()))
    df.insert(0, "ds", np.arange(len(df)))
    df.insert(0, "unique_id", "BTC")
    n_train = len(series.sample_rows(fold.train))
    steps_per_epoch = math.ceil(n_train / BATCH)
    points: list[tuple[float, float]] = []
    start = time.perf_counter()

    def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        value = math.sqrt(trial.value) / naive_rmse if trial.value is not None else math.inf
        points.append((time.perf_counter() - start, value))

    model = AutoLSTM(
        h=HORIZON,
        loss=MSE(),
        config=lambda trial: nf_search_space(trial, exog, steps_per_epoch, args.max_epochs),
        search_alg=optuna.samplers.TPESampler(seed=42),
        num_samples=args.trials,
        backend="optuna",
        callbacks=[record],
    )
    wall0, cpu0 = _clocks()
    NeuralForecast(models=[model], freq=1).fit(df, val_size=len(scored) + HORIZON - 1)
    wall1, cpu1 = _clocks()
    refit = wall1 - wall0 - points[-1][0]
    print(f"neuralforecast: {len(points)} trials; its refit of the best configuration took {refit:.1f} s more")
    return points, points[-1][0], cpu1 - cpu0


def best_so_far(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out, best = [], math.inf
    for t, v in points:
        best = min(best, v)
        out.append((t, best))
    return out


def time_to_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, v in curve if v <= target + 1e-12), None)


def plot(curves: dict[str, list[tuple[float, float]]], totals: dict, png: Path, title: str) -> None:
    """Best-so-far steps per contestant; an x where its sweep call returned (worker start-up and plots included)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, curve in curves.items():
        finite = [(t, v) for t, v in curve if math.isfinite(v)]
        line = ax.step([t for t, _ in finite], [v for _, v in finite], where="post", marker="o", label=name)[0]
        if finite:
            ax.plot([finite[-1][0], totals[name][0]], [finite[-1][1]] * 2, ls=":", color=line.get_color())
            ax.plot([totals[name][0]], [finite[-1][1]], "x", ms=10, color=line.get_color())
    ax.axhline(1.0, color="grey", lw=0.5, ls="--", label="naive (no change)")
    ax.set(xlabel="wall-clock seconds since the sweep started", ylabel="best RMSE ratio to naive so far", title=title)
    ax.legend()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def report(curves: dict, totals: dict, png: Path) -> None:
    header = f"{'contestant':15s} {'sweep wall s':>12s} {'CPU s':>7s} {'best ratio':>10s}"
    print(f"\n{header}   best-so-far after each trial (s: ratio)")
    for name, curve in curves.items():
        wall, cpu = totals[name]
        trace = ", ".join(f"{t:.0f}: {v:.4f}" for t, v in curve)
        print(f"{name:15s} {wall:12.1f} {cpu:7.1f} {curve[-1][1]:10.4f}   {trace}")
    if {"candlecast", "neuralforecast"} <= curves.keys():
        target = curves["neuralforecast"][-1][1]
        t_cc, t_nf = time_to_reach(curves["candlecast"], target), time_to_reach(curves["neuralforecast"], target)
        if t_cc is None:
            print(f"\ncandlecast never reached NeuralForecast's best ratio {target:.4f} within the budget")
        else:
            print(
                f"\nto reach NeuralForecast's best ratio {target:.4f}: candlecast {t_cc:.1f} s, "
                f"NeuralForecast {t_nf:.1f} s (candlecast/NeuralForecast = {t_cc / t_nf:.2f})"
            )
    print(f"plot: {png.resolve().relative_to(ROOT) if png.resolve().is_relative_to(ROOT) else png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2, help="candlecast trial processes (1 torch thread each)")
    parser.add_argument("--max-epochs", type=int, default=4)
    parser.add_argument("--candles", type=int, default=6000)
    parser.add_argument("--png", type=Path, default=ROOT / "bench" / "results" / "sweep_race.png")
    parser.add_argument("--only", nargs="+", default=["candlecast", "neuralforecast"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    home = Path(tempfile.mkdtemp(prefix="candlecast-race-"))
    os.environ["CANDLECAST_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    cfg, frame, paths, series, fold, scored, naive_rmse, source = prepare(args, home)
    n_train, n_val = len(series.sample_rows(fold.train)), len(series.sample_rows(fold.val))
    print(
        f"data: {source}, {len(frame)} candles; fold: {n_train} training, {n_val} early-stopping, "
        f"{len(scored)} scored windows; {args.trials} trials, <= {args.max_epochs} epochs each; "
        f"{os.cpu_count()} cores"
    )
    curves, totals = {}, {}
    if "candlecast" in args.only:
        points, wall, cpu = race_candlecast(cfg, paths)
        curves["candlecast"], totals["candlecast"] = best_so_far(points), (wall, cpu)
    if "neuralforecast" in args.only:
        import importlib.util

        if importlib.util.find_spec("neuralforecast") is None:
            print("neuralforecast: not installed (pip install -e '.[bench]')", file=sys.stderr)
        else:
            points, wall, cpu = race_neuralforecast(args, frame, series, fold, scored, naive_rmse)
            curves["neuralforecast"], totals["neuralforecast"] = best_so_far(points), (wall, cpu)
    title = f"{args.trials} trials, BTC/USDT 1h, h={HORIZON}, {len(scored)} scored windows"
    plot(curves, totals, args.png, title)
    report(curves, totals, args.png)


if __name__ == "__main__":
    main()
