"""The shared training steps of every forecaster; subclasses hold the architecture only."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn


class BaseForecaster(pl.LightningModule):
    """Direct multi-step forecaster: a window (B, L, F) in, H scaled cumulative log returns out."""

    def __init__(self, n_features: int, horizon: int, lr: float = 1e-3, weight_decay: float = 0.0):
        super().__init__()
        self.n_features = n_features
        self.horizon = horizon
        self.loss_fn = nn.MSELoss()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss_fn(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", self.loss_fn(self(x), y), on_step=False, on_epoch=True, batch_size=len(x))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
