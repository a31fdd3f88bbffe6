"""Loading a shipped bundle to forecast: the lean runtime when it carries the export, torch when it does not.

Every consumer of a registered model (the pyfunc that MLflow serves, batch prediction, the trading
signals) loads through here, so none of them imports torch or Lightning for a bundle registered with
its exported network. A bundle registered before the export still loads, through the torch network,
with a one-line note saying how to get the fast path.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from candlecast.forecasting.runtime import NETWORK_FILE, BundleForecaster, ExportedBundle, has_export
from candlecast.registry.local_registry import SqliteRegistry

log = logging.getLogger(__name__)


def load_forecaster(directory: str | Path) -> BundleForecaster:
    """The bundle in ``directory``: its exported network when it has one, else the torch network."""
    if has_export(directory):
        return ExportedBundle.load(directory)
    log.warning(
        "the bundle has no %s (registered before the export): loading it with torch and Lightning, which takes "
        "seconds; register a new version (candlecast run) for the lean runtime",
        NETWORK_FILE,
    )
    from candlecast.registry.bundle import ModelBundle  # only here: importing it loads torch

    return ModelBundle.load(directory)


def load_version(client: Any, name: str, version: str) -> BundleForecaster:
    """The bundle of registered model ``name`` version ``version``, loaded without MLflow's pyfunc machinery.

    ``client`` is ``local_registry.reader``'s: on a local registry the bundle loads where its artifacts
    are (no MLflow import, no copy); otherwise MLflow downloads the bundle artifact only (the pyfunc's
    own loading adds a requirements check and its model-from-code import). Either way the loaded
    forecaster holds everything it needs in memory.
    """
    if isinstance(client, SqliteRegistry):
        artifacts = client.local_artifacts(name, version)
        if artifacts is not None:
            return load_forecaster(artifacts / "artifacts" / "bundle")
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"{client.get_model_version_download_uri(name, version).rstrip('/')}/artifacts/bundle"
        # a runs:/ source resolves against the reader's registry, not whatever MLflow's default store is
        store = client.uri if isinstance(client, SqliteRegistry) else None
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # as tracking.client sets it
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp, tracking_uri=store)
        return load_forecaster(local)
