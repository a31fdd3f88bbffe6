"""The MLflow boundary for runs: tracking URI, experiments, parent and child runs."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from candlecast.settings import Settings


def client(settings: Settings) -> MlflowClient:
    """A client bound to the configured tracking store; also points the fluent API at it."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if settings.tracking_uri.startswith("sqlite:"):
        settings.root.mkdir(parents=True, exist_ok=True)
    # set_tracking_uri also exports MLFLOW_TRACKING_URI, which Settings reads: put the user's value back
    exported = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    if exported is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = exported
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def experiment_id(settings: Settings, name: str) -> str:
    """Get or create the experiment, with artifacts under the state folder (not ./mlruns)."""
    c = client(settings)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if not settings.tracking_uri.startswith(("http://", "https://", "databricks")):
        location = (settings.mlflow_artifacts_dir / name).as_uri()
    return c.create_experiment(name, artifact_location=location)


def lineage_tags() -> dict[str, str]:
    """Code and library versions every run records, so a model can be traced back and rebuilt."""
    tags = {f"lib.{p}": package_version(p) for p in ("torch", "lightning", "mlflow", "optuna", "prefect", "pandas")}
    tags["candlecast.version"] = package_version("candlecast")
    tags["python"] = sys.version.split()[0]
    commit = _git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def package_version(package: str) -> str:
    """The installed version of ``package``, or "not installed": logged as lineage, so it never raises."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def start_parent_run(settings: Settings, experiment: str, run_name: str, data_lineage: dict[str, str]) -> str:
    """Open the pipeline's parent run (trials become its children); returns its id."""
    c = client(settings)
    run = c.create_run(experiment_id(settings, experiment), run_name=run_name, tags=lineage_tags() | data_lineage)
    return run.info.run_id


def finish_run(settings: Settings, run_id: str, failed: bool = False) -> None:
    """Close a run opened by ``start_parent_run``, as FAILED or FINISHED."""
    client(settings).set_terminated(run_id, "FAILED" if failed else "FINISHED")
