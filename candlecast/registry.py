"""The MLflow Model Registry boundary: log the pyfunc, register versions, move aliases.

Aliases, never stages (deprecated): @champion serves, @challenger is the newest candidate,
@previous is the champion before the last promotion (the rollback target).
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

from candlecast.forecaster import Forecaster
from candlecast.tracking import package_version

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
_PYFUNC_ENTRY = Path(__file__).with_name("pyfunc_model.py")


def log_forecaster(bundle_dir: Path, input_example: pd.DataFrame, symbol: str) -> str:
    """Log the bundle as a pyfunc in the active run; returns the model URI.

    The signature takes raw candles plus an optional ``symbol`` column (several series at once).
    """
    output_example = Forecaster.load(bundle_dir).predict(input_example).assign(symbol=symbol)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(_PYFUNC_ENTRY),
        artifacts={"bundle": str(bundle_dir)},
        signature=_signature(input_example, output_example),
        input_example=input_example,
        # explicit requirements: inferring them loads the model in a subprocess (8-10 s)
        pip_requirements=[
            f"candlecast=={package_version('candlecast')}",
            f"torch=={package_version('torch').split('+')[0]}",
            f"lightning=={package_version('lightning')}",
            f"mlflow=={package_version('mlflow')}",
            f"pandas=={package_version('pandas')}",
        ],
    )
    return info.model_uri


def _signature(input_example: pd.DataFrame, output_example: pd.DataFrame) -> ModelSignature:
    inferred = infer_signature(input_example.assign(symbol="BTC/USDT"), output_example)
    inputs = [ColSpec(col.type, col.name, required=col.name != "symbol") for col in inferred.inputs.inputs]
    return ModelSignature(inputs=Schema(inputs), outputs=inferred.outputs)


def register(client: MlflowClient, name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> str:
    """Create a new version of ``name`` from a logged model; returns the version number."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="candlecast forecaster: raw candles in, forecasts out")
    version = client.create_model_version(name, model_uri, run_id=run_id, tags=tags)
    return str(version.version)  # sqlite stores give ints, REST stores strings


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def move_champion(client: MlflowClient, name: str, version: str, expected: str | None) -> None:
    """Compare-and-set @champion: only if it still points at ``expected`` (what the gate compared with)."""
    current = alias_version(client, name, CHAMPION)
    if current != expected:
        raise RuntimeError(
            f"@champion of {name} moved from version {expected} to {current} while version {version} "
            "was being evaluated: re-run the promotion against the new champion"
        )
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS, current)
    client.set_registered_model_alias(name, CHAMPION, version)
