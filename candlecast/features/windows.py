"""Windowed samples for the models, with scalers fitted on training rows only.

A sample ending at row t has inputs rows t-lookback+1..t and targets target_1..target_H of row t.
Windows never bridge a missing candle, and every fitted transform of the inputs (winsorizing
bounds, standardisation) and the target scales are fitted on the rows a fold's training samples
can see, then frozen into a ``Scaler`` that travels with the model. Targets are only rescaled,
never clipped: each step by its own spread, so the loss gives every horizon step an equal say (a
24-step cumulative return varies about 5 times as much as a one-step one).

A global model over many series (``multi_series.global_model``) scales each series on its own
training rows (``SeriesScalers``) and sees the series' identity as a one-hot input at every step of
a window, appended after scaling so no scaler ever touches it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from candlecast.features.compute import FEATURE_COLUMNS, feature_columns, target_columns
from candlecast.features.scaling import AnyScaler, Scaler, SeriesScalers, one_hot_code, scaler_for
from candlecast.schema import Range, timeframe_ms


def one_hot(scaler: AnyScaler, name: str) -> torch.Tensor | None:
    """The series' one-hot id (K,) as a float32 tensor, or None for a shared scaler (no id input)."""
    code = one_hot_code(scaler, name)
    return None if code is None else torch.from_numpy(code)


@dataclass
class SeriesArrays:
    """One series' feature matrix, targets and timestamps, aligned by row."""

    name: str
    timestamps: np.ndarray  # int64 (N,)
    features: np.ndarray  # float64 (N, F), unscaled
    targets: np.ndarray  # float64 (N, H), NaN where undefined
    close: np.ndarray  # float64 (N,)
    columns: list[str] = field(default_factory=lambda: list(FEATURE_COLUMNS))  # names of the F features
    valid_end: np.ndarray = field(init=False)  # bool (N,): row t can end a complete window

    @classmethod
    def from_frame(cls, name: str, frame: pd.DataFrame, horizon: int) -> SeriesArrays:
        """One series from its feature frame (candlecast.features.compute) with ``horizon`` targets."""
        columns = feature_columns(frame)
        return cls(
            name=name,
            timestamps=frame["timestamp"].to_numpy("int64"),
            features=frame[columns].to_numpy("float64"),
            targets=frame[target_columns(horizon)].to_numpy("float64"),
            close=frame["close"].to_numpy("float64"),
            columns=columns,
        )

    def mark_windows(self, lookback: int, step_ms: int) -> None:
        """Row t ends a window when its lookback rows are contiguous candles with finite features."""
        n = len(self.timestamps)
        ok = np.zeros(n, dtype=bool)
        if n >= lookback:
            span = self.timestamps[lookback - 1 :] - self.timestamps[: n - lookback + 1]
            finite = np.isfinite(self.features).all(axis=1).astype(np.int64)
            run = np.convolve(finite, np.ones(lookback, dtype=np.int64), mode="valid")
            ok[lookback - 1 :] = (span == (lookback - 1) * step_ms) & (run == lookback)
        self.valid_end = ok

    def until(self, end: int) -> SeriesArrays:
        """The rows up to sample time ``end``: what exists when a fold's fitting must stop."""
        keep = self.timestamps <= end
        out = SeriesArrays(
            self.name, self.timestamps[keep], self.features[keep], self.targets[keep], self.close[keep], self.columns
        )
        out.valid_end = self.valid_end[keep]
        return out

    def inputs_only(self) -> SeriesArrays:
        """The same rows with every target hidden: what a model may look at when it forecasts."""
        out = SeriesArrays(
            self.name, self.timestamps, self.features, np.full_like(self.targets, np.nan), self.close, self.columns
        )
        out.valid_end = self.valid_end
        return out

    def sample_rows(self, within: Range, need_targets: bool = True) -> np.ndarray:
        """Rows ending a complete window inside ``within`` (with every target known, unless told otherwise)."""
        rows = self.valid_end & within.mask(self.timestamps)
        if need_targets:
            rows &= np.isfinite(self.targets).all(axis=1)
        return np.flatnonzero(rows)


def fit_scaler(series: list[SeriesArrays], train: Range, winsor_quantile: float | None = None) -> Scaler:
    """Fit on every row up to the end of the training range: nothing after it can leak in.

    Target scales are the root mean square of each step's cumulative return over the training
    samples (whose targets end inside the purge gap, never in a later block).
    """
    rows = [s.timestamps <= train.end for s in series]
    feats = np.concatenate([s.features[m] for s, m in zip(series, rows, strict=True)])
    targets = np.concatenate([s.targets[m] for s, m in zip(series, rows, strict=True)])
    return Scaler.fit(feats, targets, winsor_quantile)


def fit_series_scalers(
    series: list[SeriesArrays], train: Range, winsor_quantile: float | None = None, id_input: str = "one_hot"
) -> SeriesScalers:
    """One scaler per series, each on its own rows up to the end of the training range (``fit_scaler``)."""
    pooled = fit_scaler(series, train, winsor_quantile)
    by_name = {s.name: s for s in series}
    if len(by_name) != len(series):
        raise ValueError(f"a global model needs distinct series names, got {[s.name for s in series]}")
    names = sorted(by_name)
    scalers = [
        fit_scaler([by_name[n]], train, winsor_quantile) if (by_name[n].timestamps <= train.end).any() else pooled
        for n in names
    ]
    return SeriesScalers(names, scalers, pooled, id_input)


class WindowDataset(Dataset):
    """Samples from one or more series, sliced on demand so memory stays O(rows), not O(windows).

    With a ``SeriesScalers`` each series is scaled by its own scaler and every window gets the
    series' one-hot id appended to each step: (B, L, F + K), built per batch, never stored per row.
    """

    def __init__(self, series: list[SeriesArrays], rows: list[np.ndarray], scaler: AnyScaler, lookback: int):
        self.lookback = lookback
        own = [scaler_for(scaler, s.name) for s in series]
        self.features = [torch.from_numpy(sc.transform(s.features)) for s, sc in zip(series, own, strict=True)]
        self.targets = [
            torch.from_numpy((s.targets / np.asarray(sc.target_scale)).astype("float32"))
            for s, sc in zip(series, own, strict=True)
        ]
        self.ids = [one_hot(scaler, s.name) for s in series]
        self.index = np.concatenate(
            [np.stack([np.full(len(r), i), r], axis=1) for i, r in enumerate(rows)] or [np.empty((0, 2))]
        ).astype(np.int64)
        self._offsets = torch.arange(-lookback + 1, 1)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([i])
        return x[0], y[0]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        picked = self.index[np.asarray(indices)]
        xs, ys = [], []
        for s in np.unique(picked[:, 0]):
            ends = torch.from_numpy(picked[picked[:, 0] == s, 1])
            x = self.features[s][ends[:, None] + self._offsets]  # (B, L, F)
            if self.ids[s] is not None:  # (B, L, F) -> (B, L, F + K)
                x = torch.cat([x, self.ids[s].expand(len(ends), self.lookback, -1)], dim=2)
            xs.append(x)
            ys.append(self.targets[s][ends])  # (B, H)
        return torch.cat(xs), torch.cat(ys)


def _identity(batch: Any) -> Any:
    """The batch as ``__getitems__`` sliced it: already stacked tensors, nothing to collate."""
    return batch


def make_loader(dataset: WindowDataset, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """Batches sliced by the dataset itself (``__getitems__``), shuffled by a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=_identity, num_workers=0, generator=generator
    )


def load_series(paths: dict[str, str], lookback: int, horizon: int, timeframe: str) -> list[SeriesArrays]:
    """Feature files (series name -> parquet path) as arrays with their valid windows marked."""
    out = []
    for name, path in sorted(paths.items()):
        arrays = SeriesArrays.from_frame(name, pd.read_parquet(path), horizon)
        arrays.mark_windows(lookback, timeframe_ms(timeframe))
        out.append(arrays)
    return out


def data_lineage(paths: dict[str, str]) -> dict[str, str]:
    """Content hash and range of each feature file: the exact data a run trained on."""
    import hashlib

    out = {}
    for name, path in sorted(paths.items()):
        ts = pd.read_parquet(path, columns=["timestamp"])["timestamp"]
        out[f"data.{name}.sha256"] = hashlib.sha256(open(path, "rb").read()).hexdigest()
        out[f"data.{name}.rows"] = str(len(ts))
        out[f"data.{name}.range"] = f"{int(ts.iloc[0])}..{int(ts.iloc[-1])}" if len(ts) else "empty"
    return out
