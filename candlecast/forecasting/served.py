"""The served half of each target, in NumPy and pandas alone: network outputs to forecast rows.

The lean runtime (candlecast.forecasting.runtime) forecasts without importing the targets package
(which brings the baselines, the folds and torch), so each target's ``decode``, ``frame`` and store
kind live here, keyed by the ``bundle_key`` a bundle's spec records, and the ``Target`` classes use them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from candlecast.forecasting.calibration import Calibration
from candlecast.schema import timeframe_ms


def decode_returns(out: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every output of a step times the step's scale; the quantile bounds sorted."""
    out = out.astype("float64")
    out *= np.asarray(scale, dtype="float64")[..., None]  # (H,) or (N, H) -> (..., H, 1): every output of a step
    return out[..., 0], np.sort(out[..., 1:], axis=-1)


def returns_frame(
    spec: Any, cutoffs: np.ndarray, closes: np.ndarray, point: np.ndarray, bounds: np.ndarray
) -> pd.DataFrame:
    """H rows per series: forecast prices with calibrated intervals and the log returns."""
    lower, upper = Calibration(**spec.calibration).apply(point, bounds)
    horizon = point.shape[1]
    steps = np.tile(np.arange(1, horizon + 1), len(cutoffs))
    cutoff = np.repeat(cutoffs, horizon)
    close = np.repeat(closes, horizon)
    return pd.DataFrame(
        {
            "cutoff": cutoff,
            "step": steps,
            "timestamp": cutoff + steps * timeframe_ms(spec.timeframe),
            "forecast": close * np.exp(point.ravel()),
            "lower": close * np.exp(lower.ravel()),
            "upper": close * np.exp(upper.ravel()),
            "forecast_log_return": point.ravel(),
        }
    )


def decode_variance(out: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exp of the log of the scaled variance, times the scale."""
    out = out.astype("float64")
    return np.exp(out[..., 0]) * np.asarray(scale, dtype="float64"), out[..., 1:]


def variance_frame(
    spec: Any, cutoffs: np.ndarray, closes: np.ndarray, point: np.ndarray, bounds: np.ndarray
) -> pd.DataFrame:
    """One row per series: the next h candles' variance and volatility, and each VaR as a return and a price."""
    horizon = spec.feature_config.horizon
    volatility = np.sqrt(point[:, 0])
    rows = {
        "cutoff": cutoffs,
        "horizon": horizon,
        "timestamp": cutoffs + horizon * timeframe_ms(spec.timeframe),
        "forecast_variance": point[:, 0],
        "forecast_volatility": volatility,
    }
    for name, z in (spec.var_quantiles or {}).items():
        rows[f"{name}_return"] = z * volatility
        rows[f"{name}_price"] = closes * np.exp(z * volatility)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Served:
    """How one target's network outputs become forecast rows, and where prediction stores them."""

    key: str  # the config's ``target`` value
    store_kind: str  # which prediction store its forecasts go to
    decode: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    frame: Callable[[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray], pd.DataFrame]


#: By ``BundleSpec.target`` (a target's ``bundle_key``); a test holds it in step with the targets.
SERVED: dict[str, Served] = {
    "returns": Served("returns", "returns", decode_returns, returns_frame),
    "variance": Served("volatility", "risk", decode_variance, variance_frame),
}


def served(bundle_key: str) -> Served:
    """The served form of a bundle's target; the error lists the known ones."""
    if bundle_key not in SERVED:
        raise ValueError(f"the bundle's target {bundle_key!r} is none of {sorted(SERVED)}: upgrade candlecast")
    return SERVED[bundle_key]


def store_kind(target: str) -> str:
    """The prediction store of a config's ``target`` (what ``Target.store_kind`` says, without importing it)."""
    for form in SERVED.values():
        if form.key == target:
            return form.store_kind
    raise ValueError(f"unknown target {target!r}: choose from {sorted(f.key for f in SERVED.values())}")
