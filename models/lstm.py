"""LSTM forecaster: the last hidden state of a stacked LSTM, projected to the horizon."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from candlecast.models.base import ForecastModule
from candlecast.models.losses import HeadLoss


class LSTMModule(ForecastModule):
    """A stacked LSTM; its last hidden state, after dropout, feeds the output head."""

    def __init__(
        self,
        n_features: int,
        horizon: int,
        quantiles: Sequence[float] = (0.1, 0.9),
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        loss: HeadLoss | None = None,
    ):
        super().__init__(n_features, horizon, quantiles, lr, weight_decay, loss)
        self.save_hyperparameters(ignore=["loss"])  # the head is the target's choice, passed again on rebuild
        self.lstm = nn.LSTM(
            n_features,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Sequential(nn.Dropout(dropout), self.output_head(hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, L, F) to forecasts (B, H, K) from the last hidden state."""
        out, _ = self.lstm(x)  # (B, L, F) -> (B, L, hidden)
        return self.shape_output(self.head(out[:, -1]))  # (B, hidden) -> (B, H, K)


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space over this architecture (trial is an optuna.Trial)."""
    return {
        "hidden_size": trial.suggest_categorical("hidden_size", [16, 32, 64]),
        "num_layers": trial.suggest_int("num_layers", 1, 2),
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
    }
