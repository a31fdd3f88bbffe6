"""Attention-LSTM: additive attention over every LSTM output, next to the last hidden state.

The attention lets the head weigh earlier steps of the window (e.g. the same hour yesterday)
instead of relying on what survived in the last state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from candlecast.models.base import ForecastModule
from candlecast.models.losses import HeadLoss


class AttentionLSTMModule(ForecastModule):
    """An LSTM with additive attention over its hidden states, beside the last one.

    The attention context lets a distant candle (a day ago on hourly data) inform the forecast
    without passing through every recurrent step in between.
    """

    def __init__(
        self,
        n_features: int,
        horizon: int,
        quantiles: Sequence[float] = (0.1, 0.9),
        hidden_size: int = 64,
        attention_size: int = 32,
        dropout: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        loss: HeadLoss | None = None,
    ):
        super().__init__(n_features, horizon, quantiles, lr, weight_decay, loss)
        self.save_hyperparameters(ignore=["loss"])  # the head is the target's choice, passed again on rebuild
        self.lstm = nn.LSTM(n_features, hidden_size, batch_first=True)
        self.score = nn.Sequential(nn.Linear(hidden_size, attention_size), nn.Tanh(), nn.Linear(attention_size, 1))
        self.head = nn.Sequential(nn.Dropout(dropout), self.output_head(2 * hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, L, F) to forecasts (B, H, K) from the last hidden state and the attention context."""
        out, _ = self.lstm(x)  # (B, L, F) -> (B, L, hidden)
        weights = torch.softmax(self.score(out), dim=1)  # (B, L, 1), sums to 1 over L
        context = (weights * out).sum(dim=1)  # (B, hidden)
        features = torch.cat([out[:, -1], context], dim=1)  # (B, 2 * hidden)
        return self.shape_output(self.head(features))  # (B, H, K)


def search_space(trial: Any) -> dict[str, Any]:
    """Optuna search space over this architecture (trial is an optuna.Trial)."""
    return {
        "hidden_size": trial.suggest_categorical("hidden_size", [16, 32, 64]),
        "attention_size": trial.suggest_categorical("attention_size", [16, 32]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
    }
