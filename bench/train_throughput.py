"""LSTM training throughput (windows/s) inside Lightning next to a plain PyTorch loop, in one run.

Both train the same module class (fresh, same seed) on the same DataLoader of real BTC/USDT 1h
windows for the same number of epochs; the rounds alternate (Lightning, plain, Lightning, ...)
so background load hits both alike. Lightning runs as candlecast.forecasting.neural configures it
(no progress bar, logger or checkpoints); the plain loop runs the module's own forward and loss.
Throughput is given per second of this process's CPU time (robust when other work shares the
cores; exact with --threads 1) and per wall-clock second.

    .venv/bin/python bench/train_throughput.py [--model lstm] [--rounds 3] [--epochs 1] [--windows 20000]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pandas as pd
import torch

from candlecast.config import FeatureConfig
from candlecast.features.compute import series_features
from candlecast.features.windows import SeriesArrays, WindowDataset, fit_scaler, make_loader
from candlecast.forecasting.neural import build_model, quiet_lightning
from candlecast.schema import Range

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance" / "binance_BTC-USDT_1h.csv.gz"
HOUR = 3_600_000


def loader(windows: int, fc: FeatureConfig, batch_size: int) -> tuple[torch.utils.data.DataLoader, int]:
    candles = pd.read_csv(DATA)
    s = SeriesArrays.from_frame("btc", series_features(candles, fc, "1h"), fc.horizon)
    s.mark_windows(fc.lookback, HOUR)
    everything = Range(int(s.timestamps[0]), int(s.timestamps[-1]))
    rows = s.sample_rows(everything)[-windows:]
    ds = WindowDataset([s], [rows], fit_scaler([s], everything), fc.lookback)
    return make_loader(ds, batch_size, shuffle=True, seed=0), len(s.columns)


def lightning_epochs(model: pl.LightningModule, dl, epochs: int) -> tuple[float, float]:
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        deterministic=True,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        log_every_n_steps=50,
    )
    start = _clocks()
    trainer.fit(model, train_dataloaders=dl)
    return _since(start)


def plain_epochs(model: pl.LightningModule, dl, epochs: int) -> tuple[float, float]:
    opt = model.configure_optimizers()
    model.train()
    start = _clocks()
    for _ in range(epochs):
        for x, y in dl:
            opt.zero_grad()
            loss, _ = model.loss(model(x), y)
            loss.backward()
            opt.step()
    return _since(start)


def _clocks() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    cpu, wall = _clocks()
    return cpu - start[0], wall - start[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lstm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--windows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    quiet_lightning()
    warnings.filterwarnings("ignore", ".*no `val_dataloader`.*")  # the plain loop has no validation either
    torch.set_num_threads(args.threads)
    fc = FeatureConfig(lookback=48, horizon=24)
    dl, n_features = loader(args.windows, fc, args.batch_size)
    windows = len(dl.dataset) * args.epochs
    cpu: dict[str, list[float]] = {"lightning": [], "plain": []}
    wall: dict[str, list[float]] = {"lightning": [], "plain": []}
    for r in range(args.rounds):
        for name, run in (("lightning", lightning_epochs), ("plain", plain_epochs)):
            pl.seed_everything(r, verbose=False)
            model = build_model(args.model, n_features, fc.horizon, {})
            cpu_s, wall_s = run(model, dl, args.epochs)
            cpu[name].append(windows / cpu_s)
            wall[name].append(windows / wall_s)
    print(
        f"{args.model}: {len(dl.dataset)} windows x {args.epochs} epoch(s) (lookback {fc.lookback}, {n_features} "
        f"features, horizon {fc.horizon}), batch {args.batch_size}, {args.threads} thread(s), {args.rounds} rounds"
    )
    for label, rates in (("per CPU second", cpu), ("per wall second", wall)):
        med = {k: statistics.median(v) for k, v in rates.items()}
        for name in ("plain", "lightning"):
            rounds = ", ".join(f"{x:.0f}" for x in rates[name])
            print(f"{name:10s} windows {label:16s} median {med[name]:7.0f}   rounds {rounds}")
        print(f"Lightning overhead {label}: {med['plain'] / med['lightning'] - 1:+.1%}\n")


if __name__ == "__main__":
    main()
