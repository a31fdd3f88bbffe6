"""LSTM training throughput of candlecast next to a plain PyTorch loop, NeuralForecast and Darts, in one run.

Every contestant trains the same network shape (window 64, 3 inputs, a 2-layer LSTM of hidden size 64, a
linear head, batch 256, AdamW/Adam at lr 1e-3) on the same real BTC/USDT 1h rows, for the same epochs over
the same number of training windows, and validates on the same number of windows after every epoch:

    candlecast   NeuralForecaster.fit (fit_fold: scaler, WindowDataset loader, Lightning Trainer,
                 early stopping and best-epoch weights), the path every sweep trial and backtest takes
    plain        a hand-written loop: windows materialised once, shuffled slices, AdamW, a no-grad
                 validation pass per epoch and the best epoch's weights kept (the job, without a framework)
    plain-deterministic  the same loop under torch.use_deterministic_algorithms(True), the switch
                 candlecast's Trainer(deterministic=True) turns on: it splits candlecast's gap to plain
                 into the cost of determinism and the cost of Lightning plus the data path
    neuralforecast  NeuralForecast(LSTM(... decoder_layers=1)).fit: y plus 2 historic exogenous inputs
    darts        BlockRNNModel(model="LSTM").fit: target plus 2 past covariates

Rounds are interleaved (every contestant once per round and horizon, in a rotating order), so background
load hits them alike; each contestant's rate is divided by the plain loop's rate *of the same round*, and the
ratio is reported as a geometric mean with a 95% confidence interval (Student t on the log ratios), per
second of this process's CPU time (robust to other work on the machine) and per wall-clock second. The
float32 matmul peak is measured in the same run (a 2048^2 matmul, best of several) and each rate is turned
into a fraction of it with the LSTM's analytic training FLOPs. NeuralForecast and Darts are imported lazily:
without them (the candlecast venv) they are reported as "not installed".

    .venv/bin/python bench/peers.py [--rounds 10] [--windows 8192] [--val 2048] [--epochs 2] [--threads 2]
    ../bench-venv/bin/python bench/peers.py            # with the peers (pip install -e ".[bench]")
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from peer_contestants import BATCH, CONTESTANTS, HIDDEN, INPUTS, LAYERS, LOOKBACK, Job, available, load_inputs

# ---------------------------------------------------------------- measuring


def matmul_peak_gflops(threads: int, size: int = 2048, reps: int = 8) -> float:
    """Best float32 GFLOP per CPU second of a large square matmul: the practical peak, robust to other load."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = math.inf
    for _ in range(reps):
        start = time.process_time()
        a @ b
        best = min(best, time.process_time() - start)
    return 2 * size**3 / best / 1e9


def lstm_train_flops_per_window() -> float:
    """Analytic matmul FLOPs of one training window: the gates of each layer and step, backward = 2x forward."""
    per_step = sum(2 * 4 * HIDDEN * (n_in + HIDDEN) for n_in in [len(INPUTS)] + [HIDDEN] * (LAYERS - 1))
    return 3 * per_step * LOOKBACK


def timed(run: Callable[[Job, int], int], job: Job, threads: int) -> tuple[float, float]:
    """Windows per CPU second and per wall second of one fit.

    Torch's deterministic-algorithms switch is process-wide and Lightning's Trainer(deterministic=True)
    leaves it on: it is reset to torch's default first, so each contestant runs with its own setting.
    """
    torch.use_deterministic_algorithms(False)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    windows = run(job, threads)
    return windows / (time.process_time() - cpu0), windows / (time.perf_counter() - wall0)


def ratio_ci(ratios: list[float]) -> tuple[float, float, float]:
    """Geometric mean of paired ratios and its 95% confidence interval (t on the logs)."""
    from scipy.stats import t

    logs = np.log(ratios)
    mean = float(logs.mean())
    if len(logs) < 2:
        return math.exp(mean), math.nan, math.nan
    half = float(t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / math.sqrt(len(logs)))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def quiet() -> None:
    """Silence the frameworks' banners and known harmless warnings so the figures stay readable."""
    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric", "darts"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def race(args: argparse.Namespace, names: list[str], inputs: np.ndarray) -> dict:
    """Interleaved rounds; rates[(horizon, name)] = list of (cpu rate, wall rate), one per round."""
    rates: dict[tuple[int, str], list[tuple[float, float]]] = {}
    warm_up = Job(inputs, max(args.horizons), BATCH, BATCH, 1, seed=0)
    for name in names:  # imports, oneDNN primitive caches and first-call costs stay out of the figures
        timed(CONTESTANTS[name], warm_up, args.threads)
    quiet()  # the peers reset their loggers on import
    for r in range(args.rounds):
        for h in args.horizons:
            job = Job(inputs, h, args.windows, args.val, args.epochs, seed=r)
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                rates.setdefault((h, name), []).append(timed(CONTESTANTS[name], job, args.threads))
        line = "  ".join(f"{n}@{h}={rates[(h, n)][-1][0]:.0f}" for h in args.horizons for n in names)
        print(f"round {r + 1}/{args.rounds} (windows/CPU s): {line}", file=sys.stderr, flush=True)
    return rates


def report(args: argparse.Namespace, names: list[str], missing: list[str], rates: dict, peaks: list[float]) -> None:
    peak = max(peaks)
    flops = lstm_train_flops_per_window()
    print(
        f"\nfloat32 matmul peak at {args.threads} thread(s): {peak:.0f} GFLOP per CPU s (start, end: "
        f"{', '.join(f'{p:.0f}' for p in peaks)}); LSTM training = {flops / 1e6:.1f} MFLOP per window"
    )
    for h in args.horizons:
        print(f"\nhorizon {h}: {args.windows} windows x {args.epochs} epochs + {args.val} validation windows per epoch")
        print(
            f"{'contestant':19s} {'win/CPU s':>9s} {'win/wall s':>10s} {'%peak':>6s}   "
            f"{'x plain per CPU s [95% CI]':28s} {'x plain per wall s [95% CI]':28s}"
        )
        plain = rates[(h, "plain")]
        for name in names:
            cpu = [c for c, _ in rates[(h, name)]]
            wall = [w for _, w in rates[(h, name)]]
            cpu_ratio = ratio_ci([c / p for c, (p, _) in zip(cpu, plain, strict=True)])
            wall_ratio = ratio_ci([w / p for w, (_, p) in zip(wall, plain, strict=True)])
            pct = statistics.median(cpu) * flops / 1e9 / peak
            print(
                f"{name:19s} {statistics.median(cpu):9.0f} {statistics.median(wall):10.0f} {pct:6.1%}   "
                f"{_fmt(cpu_ratio):28s} {_fmt(wall_ratio):28s}"
            )
        for name in missing:
            print(f"{name:19s} not installed (pip install -e '.[bench]')")
        _against_peers(rates, h, names)


def _against_peers(rates: dict, h: int, names: list[str]) -> None:
    """Print candlecast's rate over each peer's, paired by round: the figure the issue's targets are set on."""
    if "candlecast" not in names:
        return
    ours = rates[(h, "candlecast")]
    for peer in [n for n in names if n in ("neuralforecast", "darts")]:
        cpu = ratio_ci([a / b for (a, _), (b, _) in zip(ours, rates[(h, peer)], strict=True)])
        wall = ratio_ci([a / b for (_, a), (_, b) in zip(ours, rates[(h, peer)], strict=True)])
        print(f"candlecast / {peer}: per CPU s {_fmt(cpu)}, per wall s {_fmt(wall)}")


def _fmt(r: tuple[float, float, float]) -> str:
    return f"{r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--windows", type=int, default=8192, help="training windows per epoch")
    parser.add_argument("--val", type=int, default=2048, help="validation windows, scored after every epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: exact per-CPU-second figures)")
    parser.add_argument("--horizons", type=int, nargs="+", default=[1, 24])
    parser.add_argument("--only", nargs="+", default=list(CONTESTANTS), choices=list(CONTESTANTS))
    args = parser.parse_args()
    quiet()
    names, missing = available(["plain", *[n for n in args.only if n != "plain"]])
    inputs, source = load_inputs(args.windows + args.val + 2 * (LOOKBACK + max(args.horizons)))
    print(
        f"data: {source}, {len(inputs)} rows; torch {torch.__version__}, {args.threads} thread(s); "
        f"{args.rounds} interleaved rounds of {', '.join(names)}"
    )
    peaks = [matmul_peak_gflops(args.threads)]
    rates = race(args, names, inputs)
    peaks.append(matmul_peak_gflops(args.threads))
    report(args, names, missing, rates, peaks)


if __name__ == "__main__":
    main()
