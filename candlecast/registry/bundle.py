"""A trained forecaster as one self-contained bundle: architecture, weights, feature config, scaler, calibration.

The bundle turns raw candles into price forecasts with conformal intervals, so the same artifact
serves evaluation, batch prediction and MLflow's pyfunc. Weights are a plain ``state_dict`` loaded
with ``weights_only=True`` (no pickled code); everything else is JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from candlecast.config import FeatureConfig
from candlecast.features.compute import compute_features, feature_columns, warmup_rows
from candlecast.features.exogenous import read_exogenous
from candlecast.features.windows import Scaler, SeriesArrays
from candlecast.forecasting.calibration import Calibration
from candlecast.forecasting.neural import build_model, predict_rows
from candlecast.schema import timeframe_ms
from models import ForecastModule

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "weights.pt"


@dataclass(frozen=True)
class BundleSpec:
    model_name: str
    hparams: dict[str, Any]
    features: dict[str, Any]  # FeatureConfig fields
    timeframe: str
    scaler: dict[str, Any]  # Scaler fields
    columns: list[str]  # the input features, in the order the model was trained on
    quantiles: list[float]  # levels of the model's quantile head
    calibration: dict[str, Any]  # Calibration fields: conformal offsets per step, tracked out of sample
    target: str = "returns"  # or "variance": the volatility and Value-at-Risk of the next h candles
    var_quantiles: dict[str, float] | None = None  # variance target: standardised return quantile per VaR level
    data_cutoff: int | None = None  # open time (ms) of the newest candle the model's run saw
    train_end: int | None = None  # the newest window (origin ms) it was trained on
    calibration_end: int | None = None  # the newest out-of-sample window its intervals were tracked on

    @property
    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(**self.features)

    @property
    def min_candles(self) -> int:
        """Candles predict() needs: the feature warm-up plus one input window."""
        fc = self.feature_config
        return warmup_rows(fc, self.timeframe) + fc.lookback


class ModelBundle:
    def __init__(self, spec: BundleSpec, model: ForecastModule):
        self.spec = spec
        self.model = model.eval()
        self.scaler = Scaler(**spec.scaler)
        self.calibration = Calibration(**spec.calibration) if spec.target == "returns" else None

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / SPEC_FILE).write_text(json.dumps(asdict(self.spec), indent=2))
        torch.save(self.model.state_dict(), directory / WEIGHTS_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ModelBundle:
        directory = Path(directory)
        spec = BundleSpec(**json.loads((directory / SPEC_FILE).read_text()))
        fc = spec.feature_config
        horizon = 1 if spec.target == "variance" else fc.horizon
        model = build_model(spec.model_name, len(spec.columns), horizon, spec.hparams, spec.quantiles, spec.target)
        model.load_state_dict(torch.load(directory / WEIGHTS_FILE, weights_only=True))
        return cls(spec, model)

    def predict(self, candles: pd.DataFrame, cross: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
        """Forecast the H closes after the last candle of one series.

        ``cross`` holds the candles of the model's cross assets, if it has any; exogenous files
        are re-read from the paths in the feature config (the live feed). Returns one row per step:
        cutoff (last input candle open, ms), step, timestamp (open of the forecast candle, ms),
        forecast, lower, upper (prices) and forecast_log_return. A risk bundle (variance target)
        returns one row: the next h candles' forecast variance and volatility, and each Value-at-Risk
        as a log return and as a price.
        """
        fc = self.spec.feature_config
        step_ms = timeframe_ms(self.spec.timeframe)
        if len(candles) < self.spec.min_candles:
            raise ValueError(
                f"predict needs at least {self.spec.min_candles} contiguous {self.spec.timeframe} candles "
                f"(feature warm-up {warmup_rows(fc)} + lookback {fc.lookback}), got {len(candles)}"
            )
        exogenous = [read_exogenous(source.path, source.columns) for source in fc.exogenous]
        feats = compute_features(
            candles.sort_values("timestamp").tail(self.spec.min_candles + 1),
            fc,
            self.spec.timeframe,
            cross=cross,
            exogenous=exogenous,
        )
        if feature_columns(feats) != self.spec.columns:
            raise ValueError(f"features {feature_columns(feats)} differ from the model's {self.spec.columns}")
        arrays = SeriesArrays(
            name="input",
            timestamps=feats["timestamp"].to_numpy("int64"),
            features=feats[self.spec.columns].to_numpy("float64"),
            targets=np.full((len(feats), fc.horizon), np.nan),
            close=feats["close"].to_numpy("float64"),
            columns=self.spec.columns,
        )
        arrays.mark_windows(fc.lookback, step_ms)
        last = len(feats) - 1
        if not arrays.valid_end[last]:
            raise ValueError(
                f"the last {fc.lookback} candles before the cutoff must be contiguous {self.spec.timeframe} "
                "candles with finite values: fill the gap in the store first"
            )
        point, bounds = predict_rows(self.model, self.scaler, arrays, np.array([last]), fc.lookback)
        if self.calibration is None:
            return self._risk_frame(int(arrays.timestamps[last]), float(arrays.close[last]), float(point[0, 0]))
        lower, upper = self.calibration.apply(point, bounds)
        log_ret = point[0]
        cutoff = int(arrays.timestamps[last])
        close = float(arrays.close[last])
        steps = np.arange(1, fc.horizon + 1)
        return pd.DataFrame(
            {
                "cutoff": cutoff,
                "step": steps,
                "timestamp": cutoff + steps * step_ms,
                "forecast": close * np.exp(log_ret),
                "lower": close * np.exp(lower[0]),
                "upper": close * np.exp(upper[0]),
                "forecast_log_return": log_ret,
            }
        )

    def _risk_frame(self, cutoff: int, close: float, variance: float) -> pd.DataFrame:
        """One row: the next h candles' variance and volatility, and each VaR as a return and a price."""
        horizon = self.spec.feature_config.horizon
        row = {
            "cutoff": cutoff,
            "horizon": horizon,
            "timestamp": cutoff + horizon * timeframe_ms(self.spec.timeframe),
            "forecast_variance": variance,
            "forecast_volatility": float(np.sqrt(variance)),
        }
        for name, z in (self.spec.var_quantiles or {}).items():
            row[f"{name}_return"] = z * np.sqrt(variance)
            row[f"{name}_price"] = close * np.exp(z * np.sqrt(variance))
        return pd.DataFrame([row])
