"""The lean runtime: a shipped bundle's exported network run with NumPy, pandas and onnxruntime only.

Serving, batch prediction and the trading signals forecast through this module, so a request never
loads torch, Lightning, Optuna, Prefect or Great Expectations (an import-linter contract keeps it so;
importing the training stack costs about 5 s and 500 MB, the network itself well under a millisecond).
``BundleForecaster`` holds everything between raw candles and forecast rows (features of the last
window, the scalers, the target's served form); only the forward pass differs between the exported
network here and the torch network (candlecast.registry.bundle) that training and old bundles use.

``predict_many`` forecasts many series in one call: the last window's features of every series in
one NumPy pass (candlecast.features.last_window), then one forward pass. A global model's bundle
(``multi_series.global_model``) holds one scaler per series and gives each window its series' one-hot
id; any other bundle shares one scaler, so the same call batches a pooled model too.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from candlecast.config import FeatureConfig
from candlecast.features.compute import warmup_rows
from candlecast.features.exogenous import cached_exogenous
from candlecast.features.last_window import Candles, last_windows
from candlecast.features.scaling import SeriesScalers, one_hot_code, scaler_for, scaler_from_dict
from candlecast.forecasting.calibration import Calibration
from candlecast.forecasting.served import Served, served
from candlecast.schema import timeframe_ms

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "weights.pt"  # the torch state_dict (training, and bundles registered before the export)
NETWORK_FILE = "network.onnx"  # the exported network the runtime runs


@dataclass(frozen=True)
class BundleSpec:
    """Everything but the weights, as JSON: architecture, features, scaler(s), calibration, lineage."""

    model_name: str
    hparams: dict[str, Any]
    features: dict[str, Any]  # FeatureConfig fields
    timeframe: str
    scaler: dict[str, Any]  # Scaler fields, or SeriesScalers fields (names, scalers, pooled) for a global model
    columns: list[str]  # the input features, in the order the model was trained on
    quantiles: list[float]  # levels of the model's quantile head
    calibration: dict[str, Any]  # Calibration fields: conformal offsets per step, tracked out of sample
    target: str = "returns"  # the target's bundle_key ("variance": volatility and Value-at-Risk of the next h candles)
    var_quantiles: dict[str, float] | None = None  # variance target: standardised return quantile per VaR level
    data_cutoff: int | None = None  # open time (ms) of the newest candle the model's run saw
    train_end: int | None = None  # the newest window (origin ms) it was trained on
    calibration_end: int | None = None  # the newest out-of-sample window its intervals were tracked on

    @cached_property  # validated once: a served request reads it several times, pydantic costs ~50 us a time
    def feature_config(self) -> FeatureConfig:
        """The feature config the model was trained with."""
        return FeatureConfig(**self.features)

    @cached_property
    def min_candles(self) -> int:
        """Candles predict() needs: the feature warm-up plus one input window."""
        fc = self.feature_config
        return warmup_rows(fc, self.timeframe) + fc.lookback

    @classmethod
    def read(cls, directory: str | Path) -> BundleSpec:
        """The spec.json of a bundle directory."""
        return cls(**json.loads((Path(directory) / SPEC_FILE).read_text()))


class BundleForecaster(ABC):
    """Raw candles of one or many series in, forecasts out; subclasses run the network."""

    def __init__(self, spec: BundleSpec, form: Served | None = None):
        self.spec = spec
        self.scaler = scaler_from_dict(spec.scaler)
        self.served = form or served(spec.target)  # the target's decode and rows (the torch side passes its Target's)
        # the interval offsets, for a target with intervals (the trading signals read their level)
        self.calibration = Calibration(**spec.calibration) if spec.calibration else None

    @abstractmethod
    def network(self, windows: np.ndarray) -> np.ndarray:
        """The forward pass: scaled windows (S, L, F') float32 to outputs (S, H, K)."""

    @property
    def series_names(self) -> list[str] | None:
        """The series a global model was trained on (its one-hot vocabulary); None for a shared scaler."""
        return self.scaler.names if isinstance(self.scaler, SeriesScalers) else None

    def predict(
        self, candles: pd.DataFrame, cross: dict[str, pd.DataFrame] | None = None, symbol: str | None = None
    ) -> pd.DataFrame:
        """Forecast the H closes after the last candle of one series.

        ``cross`` holds the candles of the model's cross assets, if it has any; exogenous files
        are read from the paths in the feature config (once per process while a file is unchanged).
        ``symbol`` names the series for a global model (which scales and identifies each series by
        name). Returns one row per step: cutoff (last input candle open, ms), step, timestamp (open of
        the forecast candle, ms), forecast, lower, upper (prices) and forecast_log_return. A risk
        bundle (volatility target) returns one row: the next h candles' forecast variance and
        volatility, and each Value-at-Risk as a log return and as a price. ``spec.target`` shapes the rows.
        """
        return self._forecast([(symbol, candles)], cross)

    def predict_many(self, frame: pd.DataFrame, cross: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
        """Forecast every series of ``frame`` (candles with a ``symbol`` column) in one forward pass.

        The same rows as ``predict`` per series, with a ``symbol`` column, series in sorted order.
        A global model knows a series by the name it was trained under: the symbol itself, or a
        store slug such as binance_BTC-USDT_1h that ends in the symbol and the bundle's timeframe.
        """
        if "symbol" not in frame.columns:
            raise ValueError("predict_many needs a 'symbol' column naming each row's series")
        groups = [(str(symbol), group) for symbol, group in frame.groupby("symbol", sort=True)]
        return self.predict_groups(groups, cross)

    def predict_groups(
        self, groups: Sequence[tuple[str | None, Candles]], cross: dict[str, pd.DataFrame] | None = None
    ) -> pd.DataFrame:
        """``predict_many`` on series already split: (symbol, candles) pairs, output rows in their order.

        Candles are a frame or a mapping of each candle column to its array (the server parses a request
        into arrays and builds no frame). A lone unnamed series (symbol None) gets ``predict``'s rows,
        without a ``symbol`` column.
        """
        out = self._forecast(groups, cross)
        if len(groups) == 1 and groups[0][0] is None:
            return out
        return out.assign(symbol=np.repeat([symbol for symbol, _ in groups], len(out) // len(groups)))

    def _forecast(
        self, groups: Sequence[tuple[str | None, Candles]], cross: dict[str, pd.DataFrame] | None
    ) -> pd.DataFrame:
        """Every group's last window through one forward pass; the output rows in the groups' order.

        Features are computed on each series' newest ``min_candles + 1`` candles only (the window and
        its warm-up, whatever history the caller passes; tests/unit/test_last_window.py), for all
        series in one pass (candlecast.features.last_window).
        """
        if not groups:
            raise ValueError("no series to forecast")
        fc, need = self.spec.feature_config, self.spec.min_candles
        exogenous = [cached_exogenous(source.path, source.columns) for source in fc.exogenous]
        tails = []
        for symbol, candles in groups:
            if len(candles["timestamp"]) < need:
                raise ValueError(
                    f"{symbol or 'predict'} needs at least {need} contiguous {self.spec.timeframe} candles "
                    f"(feature warm-up {warmup_rows(fc, self.spec.timeframe)} + lookback {fc.lookback}), "
                    f"got {len(candles['timestamp'])}"
                )
            tails.append(_newest(candles, need + 1))
        windows = last_windows(tails, fc, self.spec.timeframe, fc.lookback, exogenous, cross)
        if windows.columns != self.spec.columns:
            raise ValueError(f"features {windows.columns} differ from the model's {self.spec.columns}")
        span = windows.timestamps[:, -1] - windows.timestamps[:, 0]
        usable = span == (fc.lookback - 1) * timeframe_ms(self.spec.timeframe)
        usable &= np.isfinite(windows.features).all(axis=(1, 2))
        if not usable.all():
            symbol = groups[int(np.argmin(usable))][0]
            raise ValueError(
                f"{symbol or 'the series'}: the last {fc.lookback} candles before the cutoff must be contiguous "
                f"{self.spec.timeframe} candles with finite values: fill the gap in the store first"
            )
        inputs, scales = self._scaled(windows.features, [self._series_name(symbol) for symbol, _ in groups])
        point, bounds = self.served.decode(self.network(inputs), scales)
        return self.served.frame(self.spec, windows.timestamps[:, -1], windows.closes, point, bounds)

    def _scaled(self, features: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Scaled windows (S, L, F') float32, with a global model's series id, and each series' target scale (S, H)."""
        if not isinstance(self.scaler, SeriesScalers):  # one scaler: one expression for every window
            scale = np.asarray(self.scaler.target_scale)
            return self.scaler.transform(features), np.broadcast_to(scale, (len(names), len(scale)))
        scalers = [scaler_for(self.scaler, name) for name in names]
        windows = np.stack([sc.transform(x) for sc, x in zip(scalers, features, strict=True)])  # (S, L, F)
        codes = np.stack([one_hot_code(self.scaler, name) for name in names])  # type: ignore[misc]  # (S, K)
        ids = np.broadcast_to(codes[:, None, :], (len(names), features.shape[1], codes.shape[1]))
        return np.concatenate([windows, ids], axis=2), np.stack([np.asarray(sc.target_scale) for sc in scalers])

    def _series_name(self, symbol: str | None) -> str:
        """The training name of a series for a global model (its symbol or its store slug); '' otherwise."""
        names = self.series_names
        if names is None:
            return ""
        if symbol is None:
            raise ValueError(f"a global model forecasts a named series: pass symbol= (one of {names})")
        if symbol in names:
            return symbol
        suffix = f"_{symbol.replace('/', '-')}_{self.spec.timeframe}"
        found = [n for n in names if n.endswith(suffix)]
        if len(found) != 1:
            raise ValueError(f"series {symbol!r} is not one the global model was trained on: {names}")
        return found[0]


def _newest(candles: Candles, rows: int) -> Candles:
    """The newest ``rows`` candles, sorted by time (a request or the store sends them sorted: then no copy)."""
    if isinstance(candles, pd.DataFrame):
        if not candles["timestamp"].is_monotonic_increasing:
            candles = candles.sort_values("timestamp")
        return candles.tail(rows)
    ts = np.asarray(candles["timestamp"])
    if len(ts) > 1 and (np.diff(ts) < 0).any():
        return _newest(pd.DataFrame(dict(candles)), rows)
    return {column: np.asarray(values)[-rows:] for column, values in candles.items()}


class ExportedBundle(BundleForecaster):
    """A bundle whose network runs in onnxruntime on one thread: what serving, prediction and signals load.

    One intra-op thread: a window or a hundred take milliseconds, and a server scales by workers (one
    per core), where a second thread per session would only contend for the same cores.
    """

    def __init__(self, spec: BundleSpec, network_file: Path):
        import onnxruntime as ort  # here, not at module top: a bundle without an export never needs it

        super().__init__(spec)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(network_file), options, providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name

    @classmethod
    def load(cls, directory: str | Path) -> ExportedBundle:
        """The spec and the exported network of a bundle directory."""
        directory = Path(directory)
        network = directory / NETWORK_FILE
        if not network.is_file():
            raise FileNotFoundError(f"{directory} holds no {NETWORK_FILE}: a bundle registered before the export")
        return cls(BundleSpec.read(directory), network)

    def network(self, windows: np.ndarray) -> np.ndarray:
        """One onnxruntime call for every window."""
        return self.session.run(None, {self._input: windows})[0]


def has_export(directory: str | Path) -> bool:
    """Whether a bundle directory carries the exported network."""
    return (Path(directory) / NETWORK_FILE).is_file()
