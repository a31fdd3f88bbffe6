"""The MLflow Model Registry boundary: log the pyfunc, register versions, move aliases.

Aliases, never stages (deprecated): @champion serves, @challenger is the newest candidate,
@previous is the champion before the last promotion (the rollback target). Alias moves happen
under a promotion lock and compare-and-set on the champion that the gate compared with, so two
concurrent promotions never leave two champions or lose @previous.
"""

from __future__ import annotations

import json
import tempfile
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema, TensorSpec

from candlecast.forecasting.runtime import SPEC_FILE, BundleSpec, ExportedBundle
from candlecast.io import file_lock
from candlecast.registry import local_registry
from candlecast.registry.local_registry import CHALLENGER, CHAMPION, PREVIOUS
from candlecast.registry.tracking import package_version
from candlecast.settings import Settings

__all__ = ["CHALLENGER", "CHAMPION", "PREVIOUS"]  # defined with the light lookup; every caller names them here
_PYFUNC_ENTRY = Path(__file__).with_name("pyfunc_model.py")


class ChampionMoved(RuntimeError):
    """@champion changed between the gate's read and the move: the gate must run again."""


def log_bundle(bundle_dir: Path, input_example: pd.DataFrame, symbol: str) -> str:
    """Export the network beside the weights, check it, log the bundle as a pyfunc in the active run.

    Returns the model URI. The signature takes raw candles plus an optional ``symbol`` column
    (several series at once). The output example comes from the exported network, after it has
    matched the trained one on the input example.
    """
    output_example = export_checked(bundle_dir, input_example, symbol).assign(symbol=symbol)
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
            f"onnxruntime=={package_version('onnxruntime')}",
        ],
    )
    return info.model_uri


def export_checked(bundle_dir: Path, candles: pd.DataFrame, symbol: str, tolerance: float = 1e-5) -> pd.DataFrame:
    """Export the bundle's network (network.onnx) and forecast ``candles`` (of ``symbol``) through it.

    Returns the forecast; the symbol names the series for a model that knows series apart (global, pooled).

    Refuses an export whose forecast differs from the trained network's by more than ``tolerance``
    relative, so a version never ships a network that answers differently from the one evaluated.
    """
    from candlecast.registry.bundle import ModelBundle  # torch: registration is the training side

    trained = ModelBundle.load(bundle_dir)
    trained.export(bundle_dir)
    expected = trained.predict(candles, symbol=symbol)
    got = ExportedBundle.load(bundle_dir).predict(candles, symbol=symbol)
    numeric = expected.select_dtypes("number").columns
    a, b = expected[numeric].to_numpy("float64"), got[numeric].to_numpy("float64")
    if list(got.columns) != list(expected.columns) or not np.allclose(b, a, rtol=tolerance, atol=1e-9):
        worst = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("nan")
        raise ValueError(
            f"the exported network's forecast differs from the trained network's (by up to {worst:.2e}, over "
            f"{tolerance:.0e} relative): not registered; report it with the bundle's spec.json"
        )
    return got


def _signature(input_example: pd.DataFrame, output_example: pd.DataFrame) -> ModelSignature:
    with warnings.catch_warnings():
        # timestamps are int64 on purpose (ms since epoch, never missing in a validated candle)
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column.*")
        inferred = infer_signature(input_example.assign(symbol="BTC/USDT"), output_example)
    inputs: list[ColSpec | TensorSpec] = [  # Schema takes either kind; a list is invariant, so say so
        ColSpec(col.type, col.name, required=col.name != "symbol") for col in inferred.inputs.inputs
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=inferred.outputs)


def register(client: MlflowClient, name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> str:
    """Create a new version of ``name`` from a logged model; returns the version number."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="candlecast forecaster: raw candles in, forecasts out")
    # a REST registry refuses a models:/m-<id> source unless model_id names that logged model too
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    version = client.create_model_version(name, model_uri, run_id=run_id, tags=tags, model_id=model_id)
    return str(version.version)  # sqlite stores give ints, REST stores strings


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """Map each alias of a registered model to its version ({} if the model does not exist)."""
    try:
        return {alias: str(v) for alias, v in client.get_registered_model(name).aliases.items()}
    except MlflowException:
        return {}


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version an alias points to (e.g. ``champion``), or None when the alias or the model does not exist."""
    return local_registry.alias_version(client, name, alias)


def champion_spec(client: MlflowClient, name: str) -> tuple[str, BundleSpec] | None:
    """The @champion's version and forecaster spec (its architecture, hyperparameters and features).

    Reads only the bundle's spec.json; a champion logged by an incompatible candlecast gives None.
    """
    version = alias_version(client, name, CHAMPION)
    if version is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=client.get_model_version_download_uri(name, version), dst_path=tmp
        )
        spec_path = Path(local) / "artifacts" / "bundle" / SPEC_FILE
        try:
            return version, BundleSpec(**json.loads(spec_path.read_text()))
        except (OSError, TypeError, ValueError):
            return None


@contextmanager
def promotion_lock(settings: Settings, name: str) -> Iterator[None]:
    """Serialise alias moves of one registered model.

    A Postgres-backed registry takes a transaction-independent advisory lock in its own database,
    so promotions on several machines serialise; any other backend takes a file lock under the
    state folder (one machine; for an HTTP tracking server, give the promoting deployment a
    concurrency limit of one).
    """
    uri = settings.tracking_uri
    if uri.startswith("postgresql"):
        import sqlalchemy

        engine = sqlalchemy.create_engine(uri)
        key = zlib.crc32(f"candlecast-promote-{name}".encode())
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        engine.dispose()
        return
    with file_lock(settings.root / "locks" / f"promote-{name}.lock"):
        yield


def move_champion(client: MlflowClient, name: str, version: str, expected: str | None) -> None:
    """Compare-and-set @champion: only if it still points at ``expected`` (what the gate compared with)."""
    current = alias_version(client, name, CHAMPION)
    if current != expected:
        raise ChampionMoved(
            f"@champion of {name} moved from version {expected} to {current} while version {version} "
            "was being evaluated: run the promotion again against the new champion"
        )
    if current == version:
        return
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS, current)
    client.set_registered_model_alias(name, CHAMPION, version)


def rollback(client: MlflowClient, name: str) -> tuple[str, str]:
    """Point @champion back at @previous; returns (demoted, restored). @previous is consumed."""
    current = aliases(client, name)
    previous, champion = current.get(PREVIOUS), current.get(CHAMPION)
    if previous is None:
        raise ValueError(f"{name} has no @previous version to roll back to (champion: {champion})")
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.delete_registered_model_alias(name, PREVIOUS)
    if champion is not None:
        client.set_model_version_tag(name, champion, "promotion.rolled_back", "true")
    return str(champion), previous
