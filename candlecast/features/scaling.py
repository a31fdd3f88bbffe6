"""Scalers a model's inputs travel with, in NumPy alone: the serving runtime loads them without torch.

Fitted on a fold's training rows (candlecast.features.windows) and frozen into the shipped bundle as
JSON. A global model over many series (``multi_series.global_model``) has one scaler per series
(``SeriesScalers``) and sees the series' identity as a one-hot input, appended after scaling; the pooled
variance model (``multi_series.pooled_volatility``) sees it as one column holding the series' index,
which its embedding reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_TINY = 1e-12


@dataclass(frozen=True)
class Scaler:
    """Feature clip bounds, mean/std and the per-step target scales, fitted on training rows."""

    mean: list[float]
    std: list[float]
    target_scale: list[float]  # one per horizon step
    lower: list[float] | None = None  # winsorizing bounds (None: no clipping)
    upper: list[float] | None = None

    @classmethod
    def fit(cls, features: np.ndarray, targets: np.ndarray, winsor_quantile: float | None = None) -> Scaler:
        """Fit on training rows: features (N, F) and targets (N, H), NaN ignored."""
        lower = upper = None
        if winsor_quantile:
            lower = np.nanquantile(features, winsor_quantile, axis=0)
            upper = np.nanquantile(features, 1 - winsor_quantile, axis=0)
            features = np.clip(features, lower, upper)
            lower, upper = lower.tolist(), upper.tolist()
        # a (numerically) constant column would blow up to ±inf: leave it unscaled instead
        std = np.nanstd(features, axis=0)
        std = np.where(std > _TINY, std, 1.0)
        target_scale = (
            np.sqrt(np.nanmean(targets**2, axis=0)) if np.isfinite(targets).any() else np.ones(targets.shape[1])
        )
        return cls(
            mean=np.nanmean(features, axis=0).tolist(),
            std=std.tolist(),
            target_scale=np.where(target_scale > _TINY, target_scale, 1.0).tolist(),
            lower=lower,
            upper=upper,
        )

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Clip (if winsorizing) and standardise features (N, F) to float32."""
        if self.lower is not None:
            features = np.clip(features, self.lower, self.upper)
        return ((features - np.asarray(self.mean)) / np.asarray(self.std)).astype("float32")


@dataclass(frozen=True)
class SeriesScalers:
    """One Scaler per series, by name: a global model's per-series scaling, and its series vocabulary.

    ``names`` (sorted) fixes each series' code; ``pooled`` is fitted on every series' training
    rows and serves a series that had none before the training range ended (e.g. a newer listing).
    ``id_input`` says how the code reaches the network: a one-hot vector, or one column with the index.
    """

    names: list[str]
    scalers: list[Scaler]
    pooled: Scaler
    id_input: str = "one_hot"  # or "index" (an embedding's input); bundles from before it hold one-hot

    def of(self, name: str) -> Scaler:
        """The scaler of series ``name``."""
        return self.scalers[self.code(name)]

    def code(self, name: str) -> int:
        """The series' position in the one-hot input; an unknown series is a clear error."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"series {name!r} is not one the global model was trained on: {self.names}") from None

    @classmethod
    def from_dict(cls, fields: dict) -> SeriesScalers:
        """Rebuild from ``dataclasses.asdict`` output (a bundle's JSON)."""
        scalers = [Scaler(**f) for f in fields["scalers"]]
        return cls(list(fields["names"]), scalers, Scaler(**fields["pooled"]), fields.get("id_input", "one_hot"))


AnyScaler = Scaler | SeriesScalers


def scaler_from_dict(fields: dict) -> AnyScaler:
    """A Scaler or SeriesScalers from its ``asdict`` form, whichever it was."""
    return SeriesScalers.from_dict(fields) if "scalers" in fields else Scaler(**fields)


def scaler_for(scaler: AnyScaler, name: str) -> Scaler:
    """The scaler that applies to series ``name``: its own in a SeriesScalers, else the shared one."""
    return scaler.of(name) if isinstance(scaler, SeriesScalers) else scaler


def input_width(n_features: int, scaler: AnyScaler) -> int:
    """Inputs per time step the network sees: the features plus, for a global model, the series id."""
    if not isinstance(scaler, SeriesScalers):
        return n_features
    return n_features + (1 if scaler.id_input == "index" else len(scaler.names))


def one_hot_code(scaler: AnyScaler, name: str) -> np.ndarray | None:
    """The series' id input as float32: one-hot (K,), or (1,) holding its index; None for a shared scaler."""
    if not isinstance(scaler, SeriesScalers):
        return None
    if scaler.id_input == "index":
        return np.array([scaler.code(name)], dtype="float32")
    code = np.zeros(len(scaler.names), dtype="float32")
    code[scaler.code(name)] = 1.0
    return code
