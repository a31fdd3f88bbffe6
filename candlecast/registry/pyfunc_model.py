"""MLflow "model from code" entry: logged by path, so no Python object is pickled into the model.

The pyfunc takes a frame of raw candles (timestamp, open, high, low, close, volume and an optional
symbol column for several series at once) and returns one row per series and forecast step.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from candlecast.registry.bundle import ModelBundle
from candlecast.schema import CANDLE_COLUMNS


class BundlePyfunc(PythonModel):
    """MLflow's pyfunc face of a ModelBundle: raw candles in, forecasts with intervals out.

    Loaded by ``mlflow.pyfunc.load_model`` from the bundle artifact, so a consumer needs MLflow and
    this package, never the training code's state.
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Load the bundle from the model's ``bundle`` artifact, once per loaded model."""
        self.forecaster = ModelBundle.load(context.artifacts["bundle"])

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None):
        """Forecast from raw candles; with a ``symbol`` column, each symbol's candles separately (tagged by symbol)."""
        frame = pd.DataFrame(model_input)
        if "symbol" not in frame.columns:
            return self.forecaster.predict(frame[CANDLE_COLUMNS])
        outputs = []
        for symbol, group in frame.groupby("symbol", sort=True):
            out = self.forecaster.predict(group[CANDLE_COLUMNS].sort_values("timestamp"))
            outputs.append(out.assign(symbol=symbol))
        return pd.concat(outputs, ignore_index=True)


mlflow.models.set_model(BundlePyfunc())
