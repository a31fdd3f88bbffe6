"""CNN-LSTM: causal 1-D convolutions extract local patterns, an LSTM reads them in order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from candlecast.models.base import ForecastModule
from candlecast.models.losses import HeadLoss


class CNNLSTMModule(ForecastModule):
    """A causal 1-D convolution over the window (left padding only) in front of an LSTM.

    The convolution extracts local patterns over ``kernel_size`` candles; left padding keeps step l
    from seeing later steps.
    """

    def __init__(
        self,
        n_features: int,
        horizon: int,
        quantiles: Sequence[float] = (0.1, 0.9),
        channels: int = 32,
        kernel_size: int = 3,
        hidden_size: int = 64,
        dropout: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        loss: HeadLoss | None = None,
    ):
        super().__init__(n_features, horizon, quantiles, lr, weight_decay, loss)
        self.save_hyperparameters(ignore=["loss"])  # the head is the target's choice, passed again on rebuild
        # left padding only: the output at step l sees input steps <= l
        self.pad = nn.ConstantPad1d((kernel_size - 1, 0), 0.0)
        self.conv = nn.Conv1d(n_features, channels, kernel_size)
        self.lstm = nn.LSTM(channels, hidden_size, batch_first=True)
        self.head = nn.Sequential(nn.Dropout(dropout), self.output_head(hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, L, F) to forecasts (B, H, K) through the causal convolution, then the LSTM."""
        z = torch.relu(self.conv(self.pad(x.transpose(1, 2))))  # (B, F, L) -> (B, channels, L)
        out, _ = self.lstm(z.transpose(1, 2))  # (B, L, channels) -> (B, L, hidden)
        return self.shape_output(self.head(out[:, -1]))  # (B, hidden) -> (B, H, K)


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space over this architecture (trial is an optuna.Trial)."""
    return {
        "channels": trial.suggest_categorical("channels", [16, 32]),
        "kernel_size": trial.suggest_categorical("kernel_size", [3, 5]),
        "hidden_size": trial.suggest_categorical("hidden_size", [16, 32, 64]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
    }
