"""The shared training steps of every forecaster; subclasses hold the architecture only.

Every forecaster maps a window (B, L, F) to (B, H, 1 + Q): a point forecast (trained with MSE,
so it targets the conditional mean that RMSE rewards) and Q quantiles (trained with the pinball
loss) of the H scaled cumulative log returns. With ``target="variance"`` the same architecture
ends in one number per window, the log of the next h candles' variance, trained with QLIKE.
Intervals come from the quantiles after conformal calibration on held-out windows
(candlecast.forecasting.neural).
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


def qlike_loss(log_var: torch.Tensor, realised: torch.Tensor) -> torch.Tensor:
    """QLIKE of a log-variance forecast (B,) for realised variances (B,), up to a constant: rv / f + log f.

    Its minimum is at f = E[rv]: trained on it, the network forecasts the variance itself, not a
    biased log of it (Patton 2011). Windows whose closes never moved (rv = 0) carry no proxy and are
    left out, as the evaluation leaves them out: their loss would pull the forecast towards zero risk.
    """
    moved = realised > 0
    if not bool(moved.any()):
        return (log_var * 0.0).sum()  # a batch without a proxy: no gradient, no NaN
    return (realised[moved] * torch.exp(-log_var[moved]) + log_var[moved]).mean()


class ForecastModule(pl.LightningModule):
    """Direct multi-step forecaster with a point and quantile head, or a variance head (``target``).

    Subclasses build the layers and call ``save_hyperparameters()``, which the optimizer reads.
    """

    quantile_levels: torch.Tensor  # a registered buffer: declared so its type is not nn.Module's __getattr__

    def __init__(
        self,
        n_features: int,
        horizon: int,
        quantiles: Sequence[float] = (0.1, 0.9),
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        target: str = "returns",
    ):
        super().__init__()
        if any(not 0 < q < 1 for q in quantiles):
            raise ValueError(f"quantiles must lie in (0, 1), got {list(quantiles)}")
        if target not in ("returns", "variance"):
            raise ValueError(f"target must be 'returns' or 'variance', got {target!r}")
        if target == "variance" and (horizon != 1 or len(quantiles)):
            raise ValueError("a variance head forecasts one number per window: horizon 1 and no quantiles")
        self.target = target
        self.n_features = n_features
        self.horizon = horizon
        self.register_buffer("quantile_levels", torch.tensor(sorted(quantiles), dtype=torch.float32), persistent=False)
        self.n_outputs = 1 + len(quantiles)

    def output_head(self, width: int) -> nn.Linear:
        """The projection every architecture ends with: (B, width) -> (B, H * (1 + Q))."""
        return nn.Linear(width, self.horizon * self.n_outputs)

    def shape_output(self, z: torch.Tensor) -> torch.Tensor:
        """Fold the head's flat output (B, H * (1 + Q)) into (B, H, 1 + Q): the point first, then the quantiles."""
        return z.view(len(z), self.horizon, self.n_outputs)  # (B, H * (1 + Q)) -> (B, H, 1 + Q)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(training loss, the point forecast's own loss): MSE plus pinball, or QLIKE for a variance head."""
        if self.target == "variance":  # out (B, 1, 1) is the log of the window's variance, y (B, 1) its realisation
            loss = qlike_loss(out[:, 0, 0], y[:, 0])
            return loss, loss
        mse = nn.functional.mse_loss(out[..., 0], y)
        return mse + pinball_loss(out[..., 1:], y, self.quantile_levels), mse

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
