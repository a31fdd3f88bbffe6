"""Test isolation: every session gets its own state folder and Prefect home; nothing touches ~/.

A synthetic market over HTTP: ``serve_market`` starts a local Binance emulator serving seeded
synthetic candles of a chosen signal strength up to the wall clock, for flow and system tests whose
outcome must be decided by the data (a config points ``exchange.api_url`` at it).

Real candle files: tests that read ../shared/data (the ``shared_data`` fixture, or the ``real_data``
marker on a parameter) run when the folder is there. Without it they are deselected, not skipped,
and the run says so in its header and summary: each has a synthetic twin that always runs, so a
fresh clone's skip list stays short and every skip left in it means something.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on two cores: one BLAS/OpenMP thread each, read when torch loads (after this)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

if TYPE_CHECKING:
    from candlecast.devtools.emulator import ExchangeEmulator
    from candlecast.devtools.synthetic import Signal

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
_REAL_DATA_ITEMS = pytest.StashKey[list[str]]()
HOUR_MS = 3_600_000


def pytest_configure(config: pytest.Config) -> None:
    import tempfile

    config.addinivalue_line(
        "markers", "real_data: reads the real candle files in ../shared/data (deselected when they are absent)"
    )
    root = Path(tempfile.mkdtemp(prefix="candlecast-tests-"))
    os.environ["PREFECT_HOME"] = str(root / "prefect")
    os.environ["CANDLECAST_HOME"] = str(root / "state")
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "90"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"  # core functions log outside flows here
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("PREFECT_API_URL", None)


def _needs_real_data(item: pytest.Item) -> bool:
    return "shared_data" in getattr(item, "fixturenames", ()) or item.get_closest_marker("real_data") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without ../shared/data, drop the real-data variants (their synthetic twins stay) and remember which."""
    if SHARED_DATA.is_dir():
        return
    real = [item for item in items if _needs_real_data(item)]
    if not real:
        return
    items[:] = [item for item in items if not _needs_real_data(item)]
    config.hook.pytest_deselected(items=real)
    config.stash[_REAL_DATA_ITEMS] = [item.nodeid for item in real]


def pytest_report_header(config: pytest.Config) -> str:
    found = "found" if SHARED_DATA.is_dir() else "NOT found: the real-data tests are deselected"
    return f"real candle files: {SHARED_DATA} ({found})"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    real = config.stash.get(_REAL_DATA_ITEMS, [])
    if real:
        terminalreporter.write_line(
            f"{len(real)} real-data tests deselected: no candle files at {SHARED_DATA} "
            "(put the shared data folder beside the repo to run them too)"
        )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh candlecast state folder for one test."""
    path = tmp_path / "state"
    monkeypatch.setenv("CANDLECAST_HOME", str(path))
    return path


@pytest.fixture
def shared_data() -> Path:
    """The real candle files; deselected above when absent, this skip is only a fallback."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real candle files not found at {SHARED_DATA} (the ../shared/data folder beside the repo)")
    return SHARED_DATA


@pytest.fixture
def serve_market() -> Iterator[Callable[..., ExchangeEmulator]]:
    """Start emulators of a synthetic market whose clock is the wall clock; all stopped after the test.

    ``serve(signal, symbols, history_days)`` serves hourly candles from a few days before the backfill
    window to a day ahead (only opened ones are served, as the clock runs), so every candle an ingest
    at the wall clock asks for exists whenever the test runs. Returns the started emulator.
    """
    from candlecast.devtools.emulator import ExchangeEmulator
    from candlecast.devtools.synthetic import synthetic_candles

    started: list[ExchangeEmulator] = []

    def serve(signal: Signal, symbols: list[str], history_days: int, seed: int = 11) -> ExchangeEmulator:
        now = int(time.time() * 1000)
        start = (now // HOUR_MS - (history_days + 3) * 24) * HOUR_MS
        n = (now - start) // HOUR_MS + 1 + 24
        candles = {(s, "1h"): synthetic_candles(s, start, n, seed=seed, signal=signal) for s in symbols}
        emulator = ExchangeEmulator(candles, now_ms=now, speed=1.0).start()
        started.append(emulator)
        return emulator

    yield serve
    for emulator in started:
        emulator.stop()
