"""Resolving name@alias on a local SQLite registry with sqlite3, without building MLflow's store.

Everything that only reads the registry to forecast (predict, signals, the live loop, serve-model)
needs three facts: the version an alias points at, that version's run, and where its artifacts are.
``MlflowClient`` answers them only after importing MLflow and starting its SQLAlchemy store, which
checks the schema against its migrations first: seconds before the first forecast, where these two
queries take a millisecond. ``reader`` returns ``SqliteRegistry`` for a local ``sqlite:`` registry
whose tables are MLflow 3.17's (read-only connection, ``mode=ro``), and ``MlflowClient`` for any other
registry (an HTTP server, Postgres) or a schema it does not know (one line says so). Both answer the
same calls, so a consumer takes either. Writes (registering, moving aliases) always go through MLflow.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from candlecast.settings import Settings

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"

#: The tables and columns read here, as MLflow 3.17.2 creates them; any other shape falls back to MlflowClient.
SCHEMA = {
    "registered_model_aliases": {"name", "alias", "version", "workspace"},
    "model_versions": {"name", "version", "run_id", "source", "storage_location", "current_stage", "workspace"},
}
_WORKSPACE = "default"  # MLflow's single-tenant workspace: every row when workspaces are off
_DELETED = "Deleted_Internal"  # MLflow's stage of a deleted version (still a row)


class RegistryLookupError(LookupError):
    """The alias or version does not exist in the registry."""


@dataclass(frozen=True)
class VersionRecord:
    """One registered version, as much of MLflow's ``ModelVersion`` as a forecast needs."""

    name: str
    version: str
    run_id: str | None
    source: str
    storage_location: str | None


class SqliteRegistry:
    """Read-only name@alias -> version -> artifacts on MLflow's SQLite file; MlflowClient's calls of the same name."""

    def __init__(self, path: Path):
        self.path = path
        self.uri = f"sqlite:///{path}"  # for MLflow, where the artifacts are not a local folder

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        # a connection per call: each lookup sees the registry as it is now (an alias may have moved)
        with closing(sqlite3.connect(f"file:{quote(str(self.path))}?mode=ro", uri=True)) as conn:
            return conn.execute(sql, args).fetchall()

    def matches_schema(self) -> str | None:
        """None when the tables read here have MLflow 3.17's columns, else what differs."""
        for table, columns in SCHEMA.items():
            found = {row[1] for row in self._query(f"PRAGMA table_info({table})", ())}
            if not columns <= found:
                return f"{table} lacks {sorted(columns - found)}"
        return None

    def get_model_version_by_alias(self, name: str, alias: str) -> VersionRecord:
        """The version ``name@alias`` points at; RegistryLookupError when there is none."""
        rows = self._query(
            "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ? AND workspace = ?",
            (name, alias, _WORKSPACE),
        )
        if not rows:
            raise RegistryLookupError(f"registered model {name!r} has no alias @{alias}")
        return self.get_model_version(name, str(rows[0][0]))

    def get_model_version(self, name: str, version: str) -> VersionRecord:
        """One version's run and artifact locations; RegistryLookupError when it does not exist."""
        rows = self._query(
            "SELECT run_id, source, storage_location FROM model_versions "
            "WHERE name = ? AND version = ? AND workspace = ? AND current_stage != ?",
            (name, int(version), _WORKSPACE, _DELETED),
        )
        if len(rows) != 1:
            raise RegistryLookupError(f"registered model {name!r} has no version {version}")
        run_id, source, storage = rows[0]
        return VersionRecord(name, str(version), run_id, source, storage)

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        """Where the version's artifacts are, as MLflow's own store answers it."""
        record = self.get_model_version(name, version)
        return record.storage_location or record.source

    def local_artifacts(self, name: str, version: str) -> Path | None:
        """The version's artifact folder when it is a local directory (a file store), else None."""
        uri = self.get_model_version_download_uri(name, version)
        parts = urlsplit(uri)
        if parts.scheme not in ("", "file") or parts.netloc not in ("", "localhost"):
            return None
        path = Path(unquote(parts.path))
        return path if path.is_dir() else None


def alias_version(client: Any, name: str, alias: str) -> str | None:
    """The version ``name@alias`` points at, or None when the alias or the model does not exist.

    ``client`` is a ``SqliteRegistry`` or an ``MlflowClient`` (``reader`` returns either).
    """
    if isinstance(client, SqliteRegistry):
        try:
            return client.get_model_version_by_alias(name, alias).version
        except RegistryLookupError:
            return None
    from mlflow.exceptions import MlflowException  # MlflowClient: MLflow is imported already

    try:
        return str(client.get_model_version_by_alias(name, alias).version)  # sqlite stores give ints
    except MlflowException:
        return None


def reader(settings: Settings) -> Any:
    """A read-only registry for forecasting: ``SqliteRegistry`` where it can, else ``MlflowClient``."""
    found = _sqlite_registry(settings.tracking_uri)
    if found is not None:
        return found
    from candlecast.registry import tracking

    return tracking.client(settings)


def _sqlite_registry(uri: str) -> SqliteRegistry | None:
    if not uri.startswith("sqlite:///"):  # candlecast's registry is its tracking URI (tracking.client)
        return None
    if os.environ.get("MLFLOW_ENABLE_WORKSPACES", "").lower() in ("true", "1") or os.environ.get("MLFLOW_WORKSPACE"):
        return None  # multi-tenant: the active workspace is MLflow's to resolve
    path = Path(unquote(uri.removeprefix("sqlite:///").split("?", 1)[0]))
    if not path.is_absolute():
        path = Path.cwd() / path
    if not path.is_file():
        return None  # no registry yet: MLflow creates it (and says there is no champion)
    registry = SqliteRegistry(path)
    try:
        mismatch = registry.matches_schema()
    except sqlite3.Error as exc:
        mismatch = str(exc)
    if mismatch is not None:
        log.warning(
            "the registry %s is not MLflow 3.17's layout (%s): resolving aliases through MLflow, which takes seconds",
            path,
            mismatch,
        )
        return None
    return registry
