"""Where things live, read from the environment: never what a run does (that is RunConfig)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Locations of the stores and tracking backends.

    Every default is a local file under one state folder, so a laptop needs no server; a Postgres
    Optuna storage or a remote MLflow server is only an environment variable away.
    """

    model_config = SettingsConfigDict(env_prefix="CANDLECAST_", frozen=True, extra="ignore")

    home: Path = Field(default=Path(".candlecast"), description="state folder (CANDLECAST_HOME)")
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CANDLECAST_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI"),
        description="MLflow tracking URI; default sqlite:///<home>/mlflow.db",
    )
    optuna_storage: str | None = Field(default=None, description="Optuna RDB URL; default sqlite:///<home>/optuna.db")
    prediction_store_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of a SQL prediction store when the run config names none (it may hold a password)",
    )
    dask_address: str | None = Field(
        default=None, description="Dask scheduler for fan-out (CANDLECAST_DASK_ADDRESS); default: a local cluster"
    )

    @property
    def root(self) -> Path:
        """The state folder as an absolute path, so a later change of directory cannot move it."""
        return self.home.expanduser().resolve()

    @property
    def candles_dir(self) -> Path:
        """The candle store."""
        return self.root / "candles"

    @property
    def staging_dir(self) -> Path:
        """Fetched batches waiting for the candle contract; nothing here is read as data."""
        return self.root / "staging"

    @property
    def validation_dir(self) -> Path:
        """Each series' last contract verdict (one JSON record per series)."""
        return self.root / "validation"

    @property
    def features_dir(self) -> Path:
        """Feature files, one per series, rebuilt from the store on each training run."""
        return self.root / "features"

    @property
    def predictions_dir(self) -> Path:
        """The parquet prediction store (when no SQL store is configured)."""
        return self.root / "predictions"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        """Where a local MLflow store keeps artifacts (logged models, plots)."""
        return self.root / "mlartifacts"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI: the configured one, else a sqlite file in the state folder."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def optuna_url(self) -> str:
        """The Optuna storage: the configured one, else a sqlite file in the state folder."""
        return self.optuna_storage or f"sqlite:///{self.root / 'optuna.db'}"


#: Query parameters that carry a secret in a database URL (libpq's ``?password=``, tokens of HTTP stores).
_SECRET_PARAMS = {"password", "pwd", "pass", "secret", "token", "access_token", "api_key", "apikey"}


def redact(url: str) -> str:
    """``url`` safe to print, log or write down: its password shown as ``***`` (``user:***@host``).

    Store URLs (MLflow, Optuna, Prefect's database, a SQL prediction store) may carry a password; every
    place that shows one (status, hints, pid files, logs) passes it through here. Anything that is not
    a URL with credentials comes back unchanged.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
        query = urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))
