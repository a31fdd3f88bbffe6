"""Test isolation: every session gets its own state folder and Prefect home; nothing touches ~/.

A synthetic market over HTTP: ``serve_market`` starts a local Binance emulator serving seeded
synthetic candles of a chosen signal strength up to the wall clock, for flow and system tests whose
outcome must be decided by the data (a config points ``exchange.api_url`` at it).

Real candle files: tests that read ../shared/data (the ``shared_data`` fixture, or the ``real_data``
marker on a parameter) run when the folder is there. Without it they are deselected, not skipped,
and the run says so in its header and summary: each has a synthetic twin that always runs, so a
fresh clone's skip list stays short and every skip left in it means something.

One Prefect test server per pytest process (``prefect_server``, session-scoped): every flow test of a
worker reports to it, so its ~15 s start-up is paid once per worker, not once per module.
"""

from __future__ import annotations

import contextlib
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
_STARTED = pytest.StashKey[float]()
HOUR_MS = 3_600_000


def pytest_configure(config: pytest.Config) -> None:
    import tempfile

    config.addinivalue_line(
        "markers", "real_data: reads the real candle files in ../shared/data (deselected when they are absent)"
    )
    root = Path(tempfile.mkdtemp(prefix="candlecast-tests-"))
    os.environ["PREFECT_HOME"] = str(root / "prefect")
    os.environ["CANDLECAST_HOME"] = str(root / "state")
    # TEST_WORKERS processes and their subprocesses fill the cores already: torch's intra-op threads in each
    # only oversubscribe them (OpenMP spins while it waits). Users' runs keep every core (train.threads).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
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
    """Without ../shared/data, drop the real-data variants (their synthetic twins stay); the slow files first."""
    real = [] if SHARED_DATA.is_dir() else [item for item in items if _needs_real_data(item)]
    if real:
        items[:] = [item for item in items if not _needs_real_data(item)]
        config.hook.pytest_deselected(items=real)
        config.stash[_REAL_DATA_ITEMS] = [item.nodeid for item in real]
    _slow_files_first(items)


def _slow_files_first(items: list[pytest.Item]) -> None:
    """Files with a system test, then files with a slow test, then the rest; each file's items stay in order.

    `make test` hands whole files to its workers in this order (``--no-loadscope-reorder``; xdist would
    otherwise send the files with the most tests first, so a one-test stack file started last and ran
    alone at the end). Longest first leaves the many quick files to fill the gaps.
    """
    weight: dict[Path, int] = {}
    for item in items:
        mark = 2 if item.get_closest_marker("system") else 1 if item.get_closest_marker("slow") else 0
        weight[item.path] = max(weight.get(item.path, 0), mark)
    items.sort(key=lambda item: -weight[item.path])  # stable


def pytest_report_header(config: pytest.Config) -> str:
    found = "found" if SHARED_DATA.is_dir() else "NOT found: the real-data tests are deselected"
    return f"real candle files: {SHARED_DATA} ({found})"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--durations-file",
        metavar="PATH",
        help="write the run's wall time, the time per test file and the 25 slowest phases to PATH",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STARTED] = time.time()


def _write_durations(terminalreporter: pytest.TerminalReporter, config: pytest.Config, path: Path) -> None:
    """Where the time went, kept as a file (`make test` writes .ci/durations.txt): the next person starts there."""
    reports = [r for rs in terminalreporter.stats.values() for r in rs if isinstance(r, pytest.TestReport)]
    per_file: dict[str, float] = {}
    for r in reports:
        per_file[r.nodeid.split("::")[0]] = per_file.get(r.nodeid.split("::")[0], 0.0) + r.duration
    counts = {key: len(terminalreporter.stats.get(key, [])) for key in ("passed", "failed", "error", "skipped")}
    wall = time.time() - config.stash[_STARTED]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: wall {wall:.0f} s on {os.cpu_count()} cores, "
        f"{getattr(config.option, 'numprocesses', None) or 1} pytest workers, load average {load} at the end",
        "# " + ", ".join(f"{n} {key}" for key, n in counts.items() if n),
        "",
        "## time per file (setup + call + teardown of its tests; one worker runs a whole file)",
        *(f"{t:8.1f} s  {f}" for f, t in sorted(per_file.items(), key=lambda kv: -kv[1]) if t >= 1.0),
        "",
        "## the 25 slowest phases",
        *(f"{r.duration:8.1f} s  {r.when:<8}  {r.nodeid}" for r in sorted(reports, key=lambda r: -r.duration)[:25]),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    terminalreporter.write_line(f"durations written to {path}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    durations_file = config.getoption("durations_file")
    if durations_file and not hasattr(config, "workerinput"):  # the controller sees every worker's reports
        _write_durations(terminalreporter, config, Path(durations_file))
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
    # mlflow.set_tracking_uri exports this; a value left by an earlier test would point Settings elsewhere
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return path


@pytest.fixture
def shared_data() -> Path:
    """The real candle files; deselected above when absent, this skip is only a fallback."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real candle files not found at {SHARED_DATA} (the ../shared/data folder beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One temporary Prefect server and database for this process's flow tests, stopped while pytest still listens."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@contextlib.contextmanager
def _market_servers() -> Iterator[Callable[..., ExchangeEmulator]]:
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

    try:
        yield serve
    finally:
        for emulator in started:
            emulator.stop()


@pytest.fixture
def serve_market() -> Iterator[Callable[..., ExchangeEmulator]]:
    """Start emulators of a synthetic market whose clock is the wall clock; all stopped after the test.

    ``serve(signal, symbols, history_days)`` serves hourly candles from a few days before the backfill
    window to a day ahead (only opened ones are served, as the clock runs), so every candle an ingest
    at the wall clock asks for exists whenever the test runs. Returns the started emulator.
    """
    with _market_servers() as serve:
        yield serve


@pytest.fixture(scope="module")
def serve_market_for_module() -> Iterator[Callable[..., ExchangeEmulator]]:
    """``serve_market`` for a module's steps over one stack (tests/system): stopped after the module."""
    with _market_servers() as serve:
        yield serve
