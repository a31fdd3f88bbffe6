"""MLflow "model from code" entry: logged by path, so no Python object is pickled into the model.

The pyfunc takes a frame of raw candles (timestamp, open, high, low, close, volume and an optional
symbol column for several series at once) and returns one row per series and forecast step.

A request it cannot answer (too few candles, a gap, a missing column) raises ``ServingInputError``:
`mlflow models serve` then answers HTTP 400 with the one-line reason, not a Python traceback.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST
from mlflow.pyfunc import PythonModel, PythonModelContext

from candlecast.registry.loading import load_forecaster
from candlecast.schema import CANDLE_COLUMNS


class ServingInputError(MlflowException, ValueError):
    """A request the model cannot answer, as MLflow's scoring server returns it: HTTP 400, the reason alone.

    Any other exception reaches the client as a generic message with the server's traceback in the JSON
    body, and the server prefixes an MlflowException's message with the whole input frame; this one's
    ``message`` stays the one-line reason (the server's reassignment is ignored). A ValueError too, so
    batch callers that catch bad input keep working.
    """

    def __init__(self, reason: str) -> None:
        self._reason = " ".join(str(reason).split())
        super().__init__(self._reason, error_code=BAD_REQUEST)

    @property
    def message(self) -> str:
        """The reason, whatever the scoring server assigns."""
        return self._reason

    @message.setter
    def message(self, _: str) -> None:
        pass


class BundlePyfunc(PythonModel):
    """MLflow's pyfunc face of a shipped bundle: raw candles in, forecasts with intervals out.

    Loaded by ``mlflow.pyfunc.load_model`` from the bundle artifact, so a consumer needs MLflow and
    this package, never the training code's state; a bundle with its exported network runs in the
    lean runtime (no torch or Lightning import).
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Load the bundle from the model's ``bundle`` artifact, once per loaded model."""
        self.forecaster = load_forecaster(context.artifacts["bundle"])

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None):
        """Forecast from raw candles; with a ``symbol`` column, each symbol's candles separately (tagged by symbol).

        Raises:
            ServingInputError: The candles cannot be forecast (the message says why and what is needed).
        """
        try:
            return self._forecast(pd.DataFrame(model_input))
        except KeyError as exc:
            raise ServingInputError(f"the request lacks candle columns: {exc}; send {CANDLE_COLUMNS}") from None
        except ValueError as exc:
            raise ServingInputError(str(exc)) from None

    def _forecast(self, frame: pd.DataFrame) -> pd.DataFrame:
        if "symbol" not in frame.columns:
            return self.forecaster.predict(frame[CANDLE_COLUMNS])
        # every symbol in one forward pass, each named (a global model needs the name: it is an input)
        return self.forecaster.predict_many(frame[[*CANDLE_COLUMNS, "symbol"]])


mlflow.models.set_model(BundlePyfunc())
