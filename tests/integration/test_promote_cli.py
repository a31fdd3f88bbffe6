"""`candlecast promote` on a version the gate cannot judge: one line that says why, not a traceback."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from candlecast.config import RunConfig
from candlecast.deployments.cli import app
from candlecast.registry import tracking
from candlecast.settings import Settings


def test_a_version_registered_without_a_run_is_refused_by_name(home: Path, tmp_path: Path):
    name = RunConfig().promotion.model_name
    client = tracking.client(Settings())
    client.create_registered_model(name)
    version = client.create_model_version(name, source=(tmp_path / "model").as_uri())  # from a path: no run
    assert version.run_id is None
    result = CliRunner().invoke(app, ["promote", str(version.version)])
    assert result.exit_code == 2, result.output
    assert f"v{version.version} was registered without an MLflow run" in result.output


def test_a_version_the_gate_refuses_exits_1_and_names_force(home: Path):
    """Worse than naive (ratio 1.05, not significant): refused, @champion unset, and the way to override it named."""
    import mlflow

    name = RunConfig().promotion.model_name
    settings = Settings()
    client = tracking.client(settings)
    mlflow.set_tracking_uri(settings.tracking_uri)
    with mlflow.start_run(experiment_id=client.create_experiment("gate")) as run:
        mlflow.log_metrics({"rmse_ratio": 1.05, "dm_pvalue": 0.6})
    client.create_registered_model(name)
    version = client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    result = CliRunner().invoke(app, ["promote", str(version.version)])
    assert result.exit_code == 1, result.output
    assert "refused" in result.output and "rmse_ratio 1.0500 >= 0.9990" in result.output
    assert f"promote {version.version} --force" in result.output
    assert client.get_registered_model(name).aliases == {}
