"""The `candlecast` program as a user runs it: a subprocess in its own state folder, its own session.

These run the installed console script (``.venv/bin/candlecast``), so exit codes, signals and what
reaches the terminal are the real ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HOUR_MS = 3_600_000


def candlecast_argv() -> list[str]:
    """The console script of this interpreter's environment, else the module."""
    script = Path(sys.executable).parent / "candlecast"
    return [str(script)] if script.exists() else [sys.executable, "-m", "candlecast.deployments.cli"]


def cli_env(home: Path, columns: int = 80) -> dict[str, str]:
    """The environment of a user's shell: a state folder, no PREFECT_HOME or server (the CLI picks its own)."""
    env = {**os.environ, "CANDLECAST_HOME": str(home), "COLUMNS": str(columns)}
    for name in ("PREFECT_HOME", "PREFECT_API_URL", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    return env


def start_cli(home: Path, *args: str) -> subprocess.Popen:
    """`candlecast ARGS` in its own session (a signal to its group reaches it and its children only)."""
    return subprocess.Popen(
        [*candlecast_argv(), *args],
        env=cli_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_cli(home: Path, *args: str, timeout_s: float = 300, columns: int = 80) -> subprocess.CompletedProcess:
    """`candlecast ARGS` to completion, its output captured (a pipe; COLUMNS as a narrow terminal would set it)."""
    return subprocess.run(
        [*candlecast_argv(), *args], env=cli_env(home, columns), capture_output=True, text=True, timeout=timeout_s
    )
