"""Test isolation: every session gets its own state folder and Prefect home; nothing touches ~/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="candlecast-tests-"))
    os.environ["PREFECT_HOME"] = str(root / "prefect")
    os.environ["CANDLECAST_HOME"] = str(root / "state")
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "90"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh candlecast state folder for one test."""
    path = tmp_path / "state"
    monkeypatch.setenv("CANDLECAST_HOME", str(path))
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real candle files not found at {SHARED_DATA} (the ../shared/data folder beside the repo)")
    return SHARED_DATA
