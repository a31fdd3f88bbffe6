"""docker/: the compose stack runs the commands the system test runs, with health checks and no secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from candlecast.deployments.stack import Backends, StackConfig, commands, services

DOCKER = Path(__file__).resolve().parents[2] / "docker"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_service_commands_are_the_stack_commands(compose):
    expected = commands(StackConfig.compose())
    for name, argv in expected.items():
        assert compose["services"][name]["command"] == argv, name
    assert set(compose["services"]) == {"postgres", *expected}


def test_every_service_is_health_checked_and_ordered(compose):
    svcs = compose["services"]
    assert all("healthcheck" in s for s in svcs.values())
    assert svcs["worker"]["depends_on"] == {
        "prefect-server": {"condition": "service_healthy"},
        "mlflow": {"condition": "service_healthy"},
    }
    worker_port = svcs["worker"]["environment"]["PREFECT_WORKER_WEBSERVER_PORT"]
    assert f"127.0.0.1:{worker_port}/health" in " ".join(svcs["worker"]["healthcheck"]["test"])


def test_uis_are_published_on_loopback_only(compose):
    ports = [p for s in compose["services"].values() for p in s.get("ports", [])]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)


def test_no_secret_in_the_files_and_every_variable_documented(compose):
    text = (DOCKER / "compose.yaml").read_text()
    for svc in compose["services"].values():
        for key, value in svc.get("environment", {}).items():
            assert "PASSWORD" not in key or value.startswith("${"), key
            assert "://" not in str(value) or "@" not in str(value) or "${POSTGRES_PASSWORD}" in value, key
    required = set(re.findall(r"\$\{(\w+)(?::\?[^}]*)?\}", text))  # ${VAR} and ${VAR:?message}: no default
    example = dict(line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines() if "=" in line)
    assert required <= set(example), required - set(example)
    assert ".env" in (DOCKER / ".gitignore").read_text().split()


def test_worker_environment_matches_the_stack(compose):
    env = compose["services"]["worker"]["environment"]
    worker = next(s for s in services(StackConfig.compose(), Backends(home=Path("/x"))) if s.name == "worker")
    for key in worker.env:
        if key.startswith(("CANDLECAST_", "PREFECT_API_URL", "PREFECT_WORKER_")):
            assert key in env, key
    assert env["CANDLECAST_MLFLOW_TRACKING_URI"].startswith("http://mlflow:"), "workers reach MLflow through its server"


def test_dockerfile_is_multi_stage_non_root_cpu_torch():
    text = (DOCKER / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")
    torch_pin = re.search(r'"torch==([^"]+)"', (DOCKER.parent / "pyproject.toml").read_text()).group(1)
    assert f"--index-url https://download.pytorch.org/whl/cpu torch=={torch_pin}" in text
