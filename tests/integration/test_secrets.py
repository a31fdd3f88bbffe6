"""A store URL's password never reaches argv, a pid file, a log or printed output.

Every store URL setting (the MLflow tracking URI, the Optuna storage, the Prefect server's database,
the MLflow server's backend store) gets a planted password; the commands that print or write them run,
and every output, file and command line is searched for it. One real service (optuna-dashboard, ~2 s)
starts so its /proc/<pid>/cmdline is what the kernel shows `ps`, not what we think we passed.
"""

from __future__ import annotations

import json
import socket
import stat
import urllib.request
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from candlecast.deployments import stack
from candlecast.deployments.cli import app
from candlecast.settings import Settings, redact

PASSWORD = "pl4nted-s3cret"


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every store URL setting with the password in it; the servers they name are not there (a dead port)."""
    dead = stack.free_port()
    env = {
        "CANDLECAST_HOME": str(tmp_path / "home"),
        "CANDLECAST_MLFLOW_TRACKING_URI": f"http://candle:{PASSWORD}@127.0.0.1:{dead}",
        "CANDLECAST_OPTUNA_STORAGE": f"postgresql+psycopg2://candle:{PASSWORD}@127.0.0.1:{dead}/optuna",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://candle:{PASSWORD}@127.0.0.1:{dead}/prefect",
        "MLFLOW_BACKEND_STORE_URI": f"postgresql+psycopg2://candle:{PASSWORD}@127.0.0.1:{dead}/mlflow",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # the dead tracking server fails at once
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_redact_hides_the_password_and_keeps_the_rest():
    assert (
        redact(f"postgresql+psycopg2://candle:{PASSWORD}@db:5432/optuna")
        == "postgresql+psycopg2://candle:***@db:5432/optuna"
    )
    assert (
        redact(f"postgresql://u@h/db?sslmode=require&password={PASSWORD}")
        == "postgresql://u@h/db?sslmode=require&password=***"
    )
    for clean in ("sqlite:////tmp/x/optuna.db", "http://127.0.0.1:5000", "postgresql://u@h/db"):
        assert redact(clean) == clean


def test_status_json_and_the_run_hints_show_no_password(planted, capsys, caplog):
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["tracking_uri"] == redact(planted["CANDLECAST_MLFLOW_TRACKING_URI"])
    assert report["tracking_uri"].startswith("http://candle:***@127.0.0.1:")

    from candlecast.deployments.commands.pipeline import _print_where  # what `candlecast run` prints last

    _print_where(Settings())
    hints = capsys.readouterr().out
    assert "ui --backend-store-uri http://candle:***@" in hints and "postgresql+psycopg2://candle:***@" in hints
    for text in (result.output, hints, caplog.text):
        assert PASSWORD not in text


def test_up_takes_the_store_urls_from_the_environment_and_prints_none(planted, caplog):
    with socket.socket() as busy:  # `up` stops at the port check, before starting anything
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["up", "--prefect-port", str(port), "--no-dashboard"])
        help_text = CliRunner().invoke(app, ["up", "--help"]).output
    assert result.exit_code == 2 and f"port(s) [{port}]" in result.output, result.output
    for text in (result.output, help_text, caplog.text):
        assert PASSWORD not in text


def test_no_service_of_up_gets_a_password_in_its_command_line(planted, tmp_path):
    backends = stack.Backends(
        home=tmp_path / "home",
        prefect_database=planted["PREFECT_SERVER_DATABASE_CONNECTION_URL"],
        mlflow_store=planted["MLFLOW_BACKEND_STORE_URI"],
        optuna_storage=planted["CANDLECAST_OPTUNA_STORAGE"],
    )
    services = stack.services(stack.StackConfig(), backends)
    assert {s.name for s in services} == {"prefect-server", "mlflow", "worker", "optuna-dashboard", "data-docs"}
    for svc in services:
        assert PASSWORD not in " ".join(svc.argv), svc.name
    # the secrets travel by environment (readable by this user only) or by a 0600 file
    env = {svc.name: svc.env for svc in services}
    assert PASSWORD in env["prefect-server"]["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    assert PASSWORD in env["mlflow"]["MLFLOW_BACKEND_STORE_URI"]
    assert PASSWORD in env["worker"]["CANDLECAST_OPTUNA_STORAGE"]


def test_a_started_dashboard_reads_its_storage_from_a_private_file(tmp_path):
    # SQLite takes the password as a URI parameter it ignores, so the dashboard really starts on it
    url = f"sqlite:///file:{tmp_path / 'optuna.db'}?uri=true&password={PASSWORD}"
    optuna.create_study(study_name="planted", storage=url)
    port = stack.free_port()
    backends = stack.Backends(home=tmp_path / "home", optuna_storage=url)
    cfg = stack.StackConfig(dashboard_port=port, docs_port=None)
    dashboard = next(s for s in stack.services(cfg, backends) if s.name == "optuna-dashboard")
    state = backends.state_dir
    stack.up([dashboard], state)
    try:
        pid = stack.running(state, "optuna-dashboard")
        assert pid is not None
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().replace("\0", " ")
        assert "--from-config" in cmdline and PASSWORD not in cmdline
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as resp:
            assert "planted" in resp.read().decode()  # it found the storage through the file
        (config,) = [p for p in state.iterdir() if p.suffix == ".toml"]
        assert stat.S_IMODE(config.stat().st_mode) == 0o600 and PASSWORD in config.read_text()
        for path in state.iterdir():  # the pid file and the log
            if path != config:
                assert PASSWORD not in path.read_text(errors="replace"), path.name
    finally:
        assert stack.down(state) == ["optuna-dashboard"]
    assert not list(state.glob("*.toml"))  # `down` removes the secret with the process


def test_a_prediction_store_password_lives_in_the_environment_never_in_the_run_config(tmp_path, monkeypatch):
    """The run config is logged to MLflow, Optuna and Prefect as it is, so it refuses a password; the env holds it."""
    from candlecast.registry.prediction_store import SqlPredictionStore, prediction_store

    url = f"sqlite:///{tmp_path / 'preds.db'}"
    monkeypatch.setenv("CANDLECAST_PREDICTION_STORE_URL", url)
    store = prediction_store(Settings(home=tmp_path))
    assert isinstance(store, SqlPredictionStore) and str(store.engine.url) == url
