"""The contestants of bench/peers.py: the same LSTM job trained by candlecast, by hand, by NeuralForecast and by Darts.

Each ``run_*`` function trains once on a ``Job`` and returns the number of training windows it went
through; bench/peers.py times them. NeuralForecast and Darts are imported inside their functions, so
this module loads without them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance" / "binance_BTC-USDT_1h.csv.gz"
HOUR = 3_600_000
LOOKBACK, HIDDEN, LAYERS, BATCH, LR = 64, 64, 2, 256, 1e-3
INPUTS = ["ret_1", "range", "log_volume"]  # the 3 inputs; ret_1 is also the peers' target y
QUANTILES = [0.1, 0.9]  # candlecast's default head (point + 2 quantiles); the plain loop trains the same head


@dataclass(frozen=True)
class Job:
    """What every contestant trains on: the same rows, window count and epochs."""

    inputs: np.ndarray  # float64 (T, 3): ret_1, range, log_volume
    horizon: int
    n_train: int  # training windows
    n_val: int  # validation windows
    epochs: int
    seed: int

    @property
    def train_rows(self) -> int:
        """Rows holding exactly n_train complete windows (inputs and targets)."""
        return self.n_train + LOOKBACK + self.horizon - 1

    @property
    def windows(self) -> int:
        return self.n_train * self.epochs


def load_inputs(rows: int) -> tuple[np.ndarray, str]:
    """The last ``rows`` real BTC/USDT 1h candles as the 3 inputs, or seeded synthetic ones when absent.

    Timestamps are dropped on purpose: each contestant indexes rows 0..T-1, so all see identical windows
    (a real gap in the exchange's history is then bridged, which does not matter for throughput).
    """
    if DATA.exists():
        candles, source = pd.read_csv(DATA).tail(rows + 1), f"real BTC/USDT 1h ({DATA.name})"
    else:
        rng = np.random.default_rng(0)
        close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.006, rows + 1)))
        spread = np.abs(rng.normal(0, 0.004, rows + 1))
        candles = pd.DataFrame(
            {
                "high": close * (1 + spread),
                "low": close * (1 - spread),
                "close": close,
                "volume": rng.lognormal(5, 1, rows + 1),
            }
        )
        source = f"SYNTHETIC candles: {DATA} is absent"
    close = candles["close"].to_numpy("float64")
    ret_1 = np.diff(np.log(close))
    rng_ = np.log(candles["high"].to_numpy("float64") / candles["low"].to_numpy("float64"))[1:]
    logv = np.log1p(candles["volume"].to_numpy("float64"))[1:]
    return np.stack([ret_1, rng_, logv], axis=1), source


# ---------------------------------------------------------------- contestants: each returns windows trained


def run_candlecast(job: Job, threads: int) -> int:
    """Train on candlecast's own path, exactly as a sweep trial or backtest fold calls it."""
    from candlecast.config import TrainConfig
    from candlecast.features.windows import SeriesArrays
    from candlecast.forecasting.neural import NeuralForecaster
    from candlecast.forecasting.splits import Fold
    from candlecast.schema import Range

    series, train, val = _candlecast_series(job, SeriesArrays, Range)
    cfg = TrainConfig(max_epochs=job.epochs, patience=job.epochs + 1, batch_size=BATCH, seed=job.seed, threads=threads)
    hparams = {"hidden_size": HIDDEN, "num_layers": LAYERS, "dropout": 0.0, "lr": LR, "weight_decay": 0.0}
    empty = Range(10**15, 10**15)
    forecaster = NeuralForecaster("lstm", hparams, LOOKBACK, job.horizon, cfg, QUANTILES)
    forecaster.fit([series], Fold(train=train, val=val, cal=empty, test=empty))
    assert forecaster.result is not None and forecaster.result.n_train == job.n_train, "window count drifted"
    return job.windows


def _candlecast_series(job: Job, series_cls, range_cls):
    n = len(job.inputs)
    ts = np.arange(n, dtype=np.int64) * HOUR
    targets = np.full((n, job.horizon), np.nan)
    cum = np.concatenate([[0.0], np.cumsum(job.inputs[:, 0])])
    for k in range(1, job.horizon + 1):
        targets[: n - k, k - 1] = cum[1 + k :] - cum[1 : n - k + 1]
    close = np.exp(cum[1:])
    series = series_cls("BTC/USDT", ts, job.inputs.copy(), targets, close, columns=list(INPUTS))
    series.mark_windows(LOOKBACK, HOUR)
    first = LOOKBACK - 1
    train = range_cls(int(ts[first]), int(ts[first + job.n_train - 1]))
    val_first = job.train_rows + LOOKBACK - 1
    val = range_cls(int(ts[val_first]), int(ts[val_first + job.n_val - 1]))
    return series, train, val


class PlainLSTM(torch.nn.Module):
    """The same network as candlecast's LSTMModule, without Lightning: LSTM, last state, linear head."""

    def __init__(self, horizon: int):
        super().__init__()
        self.horizon, self.outputs = horizon, 1 + len(QUANTILES)
        self.lstm = torch.nn.LSTM(len(INPUTS), HIDDEN, num_layers=LAYERS, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, horizon * self.outputs)
        self.register_buffer("q", torch.tensor(QUANTILES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # (B, L, 3) -> (B, L, hidden)
        return self.head(out[:, -1]).view(len(x), self.horizon, self.outputs)  # (B, H, 1 + Q)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        diff = y.unsqueeze(-1) - out[..., 1:]
        pinball = torch.maximum(self.q * diff, (self.q - 1) * diff).mean()
        return torch.nn.functional.mse_loss(out[..., 0], y) + pinball


def run_plain(job: Job, threads: int) -> int:
    """The same job by hand: standardise, materialise windows, shuffle, train, validate, keep the best."""
    torch.set_num_threads(threads)
    torch.manual_seed(job.seed)
    train_in = job.inputs[: job.train_rows]
    mean, std = train_in.mean(axis=0), train_in.std(axis=0)
    x_all = torch.from_numpy(((job.inputs - mean) / std).astype("float32"))
    scale = float(train_in[:, 0].std())
    cum = torch.from_numpy(np.concatenate([[0.0], np.cumsum(job.inputs[:, 0])]).astype("float32"))
    steps = torch.arange(1, job.horizon + 1)

    def windows(first_end: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        ends = torch.arange(first_end, first_end + count)
        x = x_all[ends[:, None] + torch.arange(-LOOKBACK + 1, 1)]  # (N, L, 3)
        y = (cum[1 + ends[:, None] + steps] - cum[1 + ends[:, None]]) / scale  # (N, H) cumulative returns
        return x, y

    x_tr, y_tr = windows(LOOKBACK - 1, job.n_train)
    x_va, y_va = windows(job.train_rows + LOOKBACK - 1, job.n_val)
    model = PlainLSTM(job.horizon)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    best, best_state = math.inf, None
    for _ in range(job.epochs):
        model.train()
        for idx in torch.randperm(job.n_train).split(BATCH):
            opt.zero_grad()
            model.loss(model(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            batches = zip(x_va.split(1024), y_va.split(1024), strict=True)
            val = sum(float(model.loss(model(xb), yb)) * len(xb) for xb, yb in batches)
        if val / job.n_val < best:
            best, best_state = val / job.n_val, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return job.windows


def run_plain_deterministic(job: Job, threads: int) -> int:
    """The plain loop under torch's deterministic algorithms, as candlecast's Trainer(deterministic=True) runs.

    candlecast / plain-deterministic is then the cost of Lightning and candlecast's data path alone, and
    plain-deterministic / plain the cost of determinism alone.
    """
    torch.use_deterministic_algorithms(True)
    return run_plain(job, threads)


def _trainer_kwargs() -> dict:
    return {
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        "enable_checkpointing": False,
    }


def run_neuralforecast(job: Job, threads: int) -> int:
    """NeuralForecast's LSTM, configured to the same shape: one linear projection as the decoder."""
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MSE
    from neuralforecast.models import LSTM

    torch.set_num_threads(threads)
    steps_per_epoch = math.ceil(job.n_train / BATCH)
    n = job.train_rows + job.n_val + job.horizon - 1
    frame = pd.DataFrame(
        {
            "unique_id": "BTC",
            "ds": np.arange(n),
            "y": job.inputs[:n, 0],
            "range": job.inputs[:n, 1],
            "logv": job.inputs[:n, 2],
        }
    )
    model = LSTM(
        h=job.horizon,
        input_size=LOOKBACK,
        encoder_n_layers=LAYERS,
        encoder_hidden_size=HIDDEN,
        decoder_layers=1,
        hist_exog_list=["range", "logv"],
        loss=MSE(),
        learning_rate=LR,
        max_steps=steps_per_epoch * job.epochs,
        val_check_steps=steps_per_epoch,
        batch_size=1,
        windows_batch_size=BATCH,
        valid_batch_size=1,
        inference_windows_batch_size=1024,
        scaler_type="standard",
        random_seed=job.seed,
        **_trainer_kwargs(),
    )
    NeuralForecast(models=[model], freq=1).fit(frame, val_size=job.n_val + job.horizon - 1)
    return steps_per_epoch * job.epochs * BATCH


def run_darts(job: Job, threads: int) -> int:
    """Darts' BlockRNNModel with an LSTM core of the same shape and a plain linear head."""
    from darts import TimeSeries
    from darts.models import BlockRNNModel

    torch.set_num_threads(threads)
    tr, n = job.train_rows, job.train_rows + job.n_val + LOOKBACK + job.horizon - 1
    y = TimeSeries.from_values(job.inputs[:n, :1].astype("float32"))
    cov = TimeSeries.from_values(job.inputs[:n, 1:].astype("float32"))
    model = BlockRNNModel(
        input_chunk_length=LOOKBACK,
        output_chunk_length=job.horizon,
        model="LSTM",
        hidden_dim=HIDDEN,
        n_rnn_layers=LAYERS,
        batch_size=BATCH,
        n_epochs=job.epochs,
        optimizer_kwargs={"lr": LR},
        random_state=job.seed,
        save_checkpoints=False,
        pl_trainer_kwargs=_trainer_kwargs(),
    )
    model.fit(y[:tr], past_covariates=cov, val_series=y[tr:], val_past_covariates=cov, verbose=False)
    assert model.trainer.num_training_batches == math.ceil(job.n_train / BATCH), "window count drifted"
    return job.windows


CONTESTANTS: dict[str, Callable[[Job, int], int]] = {
    "plain": run_plain,
    "plain-deterministic": run_plain_deterministic,
    "candlecast": run_candlecast,
    "neuralforecast": run_neuralforecast,
    "darts": run_darts,
}
PEER_PACKAGES = {"neuralforecast": "neuralforecast", "darts": "darts"}


def available(names: list[str]) -> tuple[list[str], list[str]]:
    """Split the requested contestants into importable ones and peers that are not installed."""
    import importlib.util

    ok = [n for n in names if n not in PEER_PACKAGES or importlib.util.find_spec(PEER_PACKAGES[n]) is not None]
    return ok, [n for n in names if n not in ok]
