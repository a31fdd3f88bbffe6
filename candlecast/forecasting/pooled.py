"""The pooled variance model's plumbing: which inputs are HAR's, and the buffers fitted on training rows.

``multi_series.pooled_volatility`` turns a volatility run's network into one model over every
configured series (candlecast.models.pooled): the global model's data path (each series scaled on its
own training rows) with the series' index as its id input, read by a learned embedding. Its HAR-form
inputs are the ``rm_*`` realized-measure columns (``features.realized``; ``rv`` is required, it gives
HAR's regressors). ``residual`` adds the network's output to the ``har`` baseline
(candlecast.forecasting.risk_baselines.HAR) fitted on the same training rows, so the untrained network
forecasts exactly what log-HAR forecasts; ``direct`` leaves HAR out. Nothing here reads a row after
the training range: the scalers, the log standardisation and the HAR fit all stop at its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from candlecast.features.scaling import SeriesScalers
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.risk_baselines import HAR
from candlecast.forecasting.splits import Fold
from candlecast.models import ForecastModule, HeadLoss
from candlecast.models.pooled import PooledVarianceModule
from candlecast.schema import Range

#: The realized columns HAR regresses on: realized variance over the last day, week and month (as volatilities).
HAR_COLUMNS = ("rm_rv_d", "rm_rv_w", "rm_rv_m")
EMBEDDING_DIM = 4  # a handful of series: a small embedding, fixed rather than searched


@dataclass(frozen=True)
class PooledSpec:
    """How the pooled variance model is fitted: residual on log-HAR or not, and what HAR needs."""

    residual: bool
    horizon: int  # candles ahead (HAR's target)
    step_ms: int


def realized_layout(columns: list[str]) -> tuple[list[int], list[int]]:
    """The ``rm_*`` columns' indices, and where HAR's three sit among them; one line if ``rv`` is missing."""
    realized = [i for i, c in enumerate(columns) if c.startswith("rm_")]
    names = [columns[i] for i in realized]
    missing = [c for c in HAR_COLUMNS if c not in names]
    if missing:
        raise ValueError(
            f"the pooled volatility model reads HAR's inputs {missing}, which these features lack: "
            "add rv to features.realized (e.g. realized: [rv, garman_klass])"
        )
    return realized, [names.index(c) for c in HAR_COLUMNS]


def pooled_module(
    cls: type[ForecastModule],
    params: dict[str, Any],
    n_features: int,
    horizon: int,
    scaler: SeriesScalers,
    columns: list[str],
    loss: HeadLoss | None,
) -> PooledVarianceModule:
    """``cls`` inside the pooled wrapper, shaped by the series vocabulary and the feature columns."""
    realized, har = realized_layout(columns)
    params = dict(params)
    quantiles = params.pop("quantiles", (0.1, 0.9))
    return PooledVarianceModule(
        n_features, horizon, cls, params, len(scaler.names), realized, har, EMBEDDING_DIM, quantiles, loss
    )


def prepare(
    model: PooledVarianceModule, series: list[SeriesArrays], train: Range, scaler: SeriesScalers, spec: PooledSpec
) -> None:
    """Fill the module's buffers from the rows up to ``train``'s end (series are variance views)."""
    cols = model.realized
    by_name = {s.name: s for s in series}
    mean = [np.asarray(scaler.of(n).mean)[cols] for n in scaler.names]
    std = [np.asarray(scaler.of(n).std)[cols] for n in scaler.names]
    logs = []
    for k, name in enumerate(scaler.names):
        s = by_name[name]
        z = scaler.of(name).transform(s.features[s.timestamps <= train.end])[:, cols]
        vol = z.astype("float64") * std[k] + mean[k]  # what the module sees: the scaled columns unscaled
        with np.errstate(divide="ignore", invalid="ignore"):
            logs.append(2 * np.log(np.maximum(vol, 1e-12)))
    stacked = np.concatenate(logs)
    log_mean, log_std = np.nanmean(stacked, axis=0), np.nanstd(stacked, axis=0)
    buffers = {
        "rm_mean": np.stack(mean),
        "rm_std": np.stack(std),
        "log_mean": log_mean,
        "log_std": np.where(log_std > 1e-12, log_std, 1.0),
    }
    if spec.residual:
        har = HAR(spec.horizon, spec.step_ms)
        har.fit(series, Fold(train, train, train, train))  # HAR reads the training range only
        scales = np.array([scaler.of(n).target_scale[0] for n in scaler.names])
        buffers["har_coef"] = har.coef
        buffers["har_offset"] = np.log(har.smearing) - np.log(scales)
        model.zero_output()
    with torch.no_grad():
        for key, value in buffers.items():
            getattr(model, key).copy_(torch.as_tensor(np.asarray(value), dtype=torch.float32))
