"""Loss heads: what a network's outputs mean and how they are trained, chosen by the target outside models/.

A module's output size per step comes from its loss (``outputs``), as neuralforecast's loss objects
set a network's output size: the forecasting targets (candlecast.forecasting.targets) pick the head,
the architectures stay the same. Each loss returns (training loss, the point forecast's own loss).
"""

from __future__ import annotations

from collections.abc import Sequence

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


class HeadLoss(nn.Module):
    """A loss that also fixes the outputs per step of the network it trains (no parameters, no saved state)."""

    outputs: int

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(training loss, the point forecast's own loss) of outputs (B, H, outputs) for targets y (B, H)."""
        raise NotImplementedError


class PointQuantileLoss(HeadLoss):
    """A point forecast trained with MSE (the conditional mean RMSE rewards) plus Q quantiles by pinball loss."""

    quantile_levels: torch.Tensor  # a registered buffer: declared so its type is not nn.Module's __getattr__

    def __init__(self, quantiles: Sequence[float] = (0.1, 0.9)):
        super().__init__()
        if any(not 0 < q < 1 for q in quantiles):
            raise ValueError(f"quantiles must lie in (0, 1), got {list(quantiles)}")
        self.register_buffer("quantile_levels", torch.tensor(sorted(quantiles), dtype=torch.float32), persistent=False)
        self.outputs = 1 + len(quantiles)

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MSE of the point plus the quantiles' pinball loss, and the MSE alone."""
        mse = nn.functional.mse_loss(out[..., 0], y)
        return mse + pinball_loss(out[..., 1:], y, self.quantile_levels), mse


class LogVarianceQLike(HeadLoss):
    """One number per window, the log of its variance, trained with QLIKE on the realised variance (B, 1)."""

    outputs = 1

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """QLIKE of out (B, 1, 1) for y (B, 1), twice: it is both the training and the point loss."""
        loss = qlike_loss(out[:, 0, 0], y[:, 0])
        return loss, loss
