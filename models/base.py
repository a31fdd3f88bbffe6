"""The shared training steps of every forecaster; subclasses hold the architecture only.

Every forecaster maps a window (B, L, F) to (B, H, K): K outputs per step, as many as its loss head
asks for (candlecast.models.losses). The default head is a point forecast (MSE) and Q quantiles
(pinball loss) of the H scaled cumulative log returns; the forecasting target passes another head
(one log variance per window, trained with QLIKE) without the architecture changing. Intervals come
from the quantiles after conformal calibration on held-out windows (candlecast.forecasting).
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from torch import nn

from candlecast.models.losses import HeadLoss, PointQuantileLoss


class ForecastModule(pl.LightningModule):
    """Direct multi-step forecaster whose loss head sets its outputs per step (point and quantiles by default).

    Subclasses build the layers and call ``save_hyperparameters(ignore=["loss"])``, which the optimizer reads.
    """

    def __init__(
        self,
        n_features: int,
        horizon: int,
        quantiles: Sequence[float] = (0.1, 0.9),
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        loss: HeadLoss | None = None,
    ):
        super().__init__()
        self.criterion = loss if loss is not None else PointQuantileLoss(quantiles)
        self.n_features = n_features
        self.horizon = horizon
        self.n_outputs = self.criterion.outputs

    def output_head(self, width: int) -> nn.Linear:
        """The projection every architecture ends with: (B, width) -> (B, H * K)."""
        return nn.Linear(width, self.horizon * self.n_outputs)

    def shape_output(self, z: torch.Tensor) -> torch.Tensor:
        """Fold the head's flat output (B, H * K) into (B, H, K): for the default head the point, then the quantiles."""
        return z.view(-1, self.horizon, self.n_outputs)  # (B, H * K) -> (B, H, K); -1 keeps B dynamic in an export

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(training loss, the point forecast's own loss), as the loss head defines them."""
        return self.criterion(out, y)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Lightning's training step: the combined loss, logged once per epoch."""
        x, y = batch
        loss, _ = self.loss(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Lightning's validation step: the combined loss (early stopping monitors it) and the point forecast's MSE."""
        x, y = batch
        loss, mse = self.loss(self(x), y)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        self.log("val_mse", mse, on_step=False, on_epoch=True, batch_size=len(x))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW (decoupled weight decay) with the learning rate and weight decay the subclass saved."""
        return torch.optim.AdamW(self.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"])
