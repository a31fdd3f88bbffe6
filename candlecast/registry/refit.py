"""The model that ships: the chosen configuration refitted on every candle up to the data cutoff.

The walk-forward folds judge the configuration; none of their models ships, since the newest of
them stopped training a test block, a calibration block and an early-stopping block before the
cutoff. The shipped model trains on every window whose targets are known at the cutoff, for the
epoch count the folds chose (no block is held back for early stopping), and carries the interval
offsets that adaptive calibration tracked out of sample to the end of the last test block.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
from lightning.pytorch import Callback

from candlecast.config import RunConfig
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.neural import NeuralForecaster, neural_forecaster
from candlecast.forecasting.targets import target_of
from candlecast.registry.bundle import BundleSpec, ModelBundle
from candlecast.schema import Range


def refit_epochs(fitted: list[NeuralForecaster]) -> int:
    """The median of the folds' best epochs: how long the configuration needed to train, out of sample."""
    epochs = [f.result.best_epoch for f in fitted if f.result is not None]
    if not epochs:
        raise RuntimeError("no evaluation fold left a fitted model to take the epoch count from")
    return max(1, int(np.median(epochs)))


def refit_bundle(
    cfg: RunConfig,
    series: list[SeriesArrays],
    hparams: dict,
    epochs: int,
    shipped: dict[str, Any],
    calibration_end: int,
    callbacks: list[Callback] | None = None,
) -> tuple[ModelBundle, NeuralForecaster]:
    """Fit the configuration on all windows up to the cutoff (on the target's label) and bundle it with its lineage.

    ``shipped`` holds what the target carries out of the last test fold (``Target.shipped``: interval
    offsets, or the VaR quantiles). ``callbacks`` watch the fit (the evaluation's epoch progress).
    """
    target = target_of(cfg)
    series = [target.view(s) for s in series]
    first = min(int(s.timestamps[0]) for s in series)
    cutoff = max(int(s.timestamps[-1]) for s in series)
    train = Range(first, cutoff)
    final = neural_forecaster(cfg, cfg.sweep.model, hparams, callbacks=callbacks)
    final.refit(series, train, epochs)
    assert final.result is not None
    spec = BundleSpec(
        model_name=cfg.sweep.model,
        hparams=dict(hparams),
        features=cfg.features.model_dump(mode="json"),
        timeframe=cfg.data.timeframe,
        scaler=asdict(final.result.scaler),
        columns=list(series[0].columns),
        quantiles=final.quantiles,
        calibration=shipped.get("calibration", {}),
        target=target.bundle_key,
        var_quantiles=shipped.get("var_quantiles"),
        data_cutoff=cutoff,
        train_end=final.result.windows.end,
        calibration_end=calibration_end,
    )
    return ModelBundle(spec, final.result.model), final
