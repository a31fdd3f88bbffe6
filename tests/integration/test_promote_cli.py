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
