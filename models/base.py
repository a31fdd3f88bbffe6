"""The shared training steps of every forecaster; subclasses hold the architecture only.

Every forecaster maps a window (B, L, F) to (B, H, 1 + Q): a point forecast (trained with MSE,
so it targets the conditional mean that RMSE rewards) and Q quantiles (trained with the pinball
loss) of the H scaled cumulative log returns. Intervals come from the quantiles after conformal
calibration on held-out windows (candlecast.forecasting.neural).
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from torch import nn


def pinball_loss(pred: torch.Tensor, y: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss of quantile forecasts pred (B, H, Q) for targets y (B, H)."""
    diff = y.unsqueeze(-1) - pred  # (B, H, Q)
    return torch.maximum(quantiles * diff, (quantiles - 1) * diff).mean()


class ForecastModule(pl.LightningModule):
    """Direct multi-step forecaster with a point and quantile head."""

    def __init__(
        self,
        n_features: int,
        horizon: int,
        quantiles: Sequence[float] = (0.1, 0.9),
        lr: float = 1e-3,
        weight_decay: float = 0.0,
    ):
        super().__init__()
        if any(not 0 < q < 1 for q in quantiles):
            raise ValueError(f"quantiles must lie in (0, 1), got {list(quantiles)}")
        self.n_features = n_features
        self.horizon = horizon
        self.register_buffer("quantile_levels", torch.tensor(sorted(quantiles), dtype=torch.float32), persistent=False)
        self.n_outputs = 1 + len(quantiles)

    def output_head(self, width: int) -> nn.Linear:
        """The projection every architecture ends with: (B, width) -> (B, H * (1 + Q))."""
        return nn.Linear(width, self.horizon * self.n_outputs)

    def shape_output(self, z: torch.Tensor) -> torch.Tensor:
        return z.view(len(z), self.horizon, self.n_outputs)  # (B, H * (1 + Q)) -> (B, H, 1 + Q)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mse = nn.functional.mse_loss(out[..., 0], y)
        return mse + pinball_loss(out[..., 1:], y, self.quantile_levels), mse

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss, _ = self.loss(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        loss, mse = self.loss(self(x), y)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        self.log("val_mse", mse, on_step=False, on_epoch=True, batch_size=len(x))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
