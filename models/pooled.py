"""One variance network for many series: a learned series embedding, log realized inputs, residual on log-HAR.

Any architecture of the family runs inside (``inner``). A window (B, L, F + 1) carries its series'
index as its last input column (appended after scaling, as a global model's one-hot is), so the
exported graph takes the series id with the window and the lean runtime feeds it unchanged. The
wrapper turns the realized-measure columns back into daily variances (per-series scaler buffers), takes
their logs (HAR form, standardised on the training rows of every series together), appends a small
embedding of the series id to every step and adds the inner network's output to the log-HAR forecast
held in buffers (``har_coef``, ``har_offset``). With the inner output layer zeroed, a fresh module IS
that log-HAR; a direct (non-residual) module keeps zero HAR buffers. Every buffer is fitted on training
rows by candlecast.forecasting.pooled and travels in the state_dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from candlecast.models.base import ForecastModule
from candlecast.models.losses import HeadLoss

_TINY = 1e-12  # a window that never moved has variance 0: its log is clamped, never -inf


class PooledVarianceModule(ForecastModule):
    """``inner`` on [scaled features, standardised log realized measures, series embedding], plus log-HAR."""

    har_coef: torch.Tensor  # (4,) constant, log RV_d, log RV_w, log RV_m (registered buffers, declared for mypy)
    har_offset: torch.Tensor  # (K,) per series: log smearing - log target scale
    rm_mean: torch.Tensor  # (K, R) per-series scaler mean of the realized columns
    rm_std: torch.Tensor  # (K, R)
    log_mean: torch.Tensor  # (R,) standardisation of their logs, all series' training rows together
    log_std: torch.Tensor  # (R,)

    def __init__(
        self,
        n_features: int,
        horizon: int,
        inner: type[ForecastModule],
        inner_params: dict[str, Any],
        n_series: int,
        realized_columns: Sequence[int],
        har_positions: Sequence[int],
        embedding_dim: int = 4,
        quantiles: Sequence[float] = (0.1, 0.9),
        loss: HeadLoss | None = None,
    ):
        lr, weight_decay = inner_params.get("lr", 1e-3), inner_params.get("weight_decay", 0.0)
        super().__init__(n_features, horizon, quantiles, lr, weight_decay, loss)
        self.save_hyperparameters(ignore=["loss", "inner"])
        self.hparams["lr"], self.hparams["weight_decay"] = lr, weight_decay  # what configure_optimizers reads
        self.realized = list(realized_columns)
        self.har_positions = list(har_positions)  # RV_d, RV_w, RV_m among the realized columns
        n_realized = len(self.realized)
        self.embedding = nn.Embedding(n_series, embedding_dim)
        width = n_features - 1 + n_realized + embedding_dim
        self.inner = inner(n_features=width, horizon=horizon, quantiles=quantiles, loss=loss, **inner_params)
        self.register_buffer("har_coef", torch.zeros(4))
        self.register_buffer("har_offset", torch.zeros(n_series))
        self.register_buffer("rm_mean", torch.zeros(n_series, n_realized))
        self.register_buffer("rm_std", torch.ones(n_series, n_realized))
        self.register_buffer("log_mean", torch.zeros(n_realized))
        self.register_buffer("log_std", torch.ones(n_realized))

    def log_realized(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The realized columns of windows x (B, L, F) as log daily variances (B, L, R)."""
        vol = x[..., self.realized] * self.rm_std[ids][:, None, :] + self.rm_mean[ids][:, None, :]
        return 2.0 * torch.log(torch.clamp(vol, min=_TINY))  # the columns are volatilities: log of their square

    def har(self, log_rm: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The log-HAR forecast (B,) of the scaled variance, from the last step's log RV_d, RV_w, RV_m."""
        terms = log_rm[:, -1, self.har_positions]  # (B, 3)
        return self.har_coef[0] + (terms * self.har_coef[1:]).sum(dim=1) + self.har_offset[ids]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, L, F + 1), the series index last, to log variances (B, H, 1)."""
        ids = torch.round(x[:, -1, -1]).long()  # (B,)
        features = x[..., :-1]  # (B, L, F)
        log_rm = self.log_realized(features, ids)
        z = (log_rm - self.log_mean) / self.log_std
        emb = self.embedding(ids)[:, None, :].expand(-1, x.shape[1], -1)  # (B, L, E)
        out = self.inner(torch.cat([features, z, emb], dim=2))  # (B, H, 1)
        return out + self.har(log_rm, ids)[:, None, None]

    def zero_output(self) -> None:
        """Zero the inner network's last linear layer: its output starts at 0, so the module starts as log-HAR."""
        last = [m for m in self.inner.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
