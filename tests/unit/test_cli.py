from typer.testing import CliRunner

from candlecast.deployments.cli import app

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "status", "emulate"):
        assert command in result.stdout


def test_bad_config_exits_2_and_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sweep:\n  trials: 3\n")
    result = runner.invoke(app, ["status", "--config", str(bad)])
    assert result.exit_code == 2
    assert "trials" in result.stdout
